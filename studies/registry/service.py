"""Study registration, sites and protocol versions (§11.3.4.1, §11.3.4.2, §11.3.1 a).

Every change is one ledger entry in the same transaction. A protocol version is never edited:
an amendment is a new version, which stops enrolment and entry until the ethics committee
approves it (see :mod:`studies.consent.service`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry.models import DESIGNS, STUDY_STATUSES, ProtocolVersion, Site, Study
from studies.registry.schemas import ProtocolIn, SiteIn, StudyIn

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,99}$")
SITE_CODE_RE = re.compile(r"^S\d{2,3}$")


PROTOCOL_FIELDS = tuple(ProtocolIn.model_fields)
DESIGN_FLAGS = ("blinded", "design", "post_market", "real_world_data", "public_interest")


# Statements on every request's path are built once (building one costs about as much as
# running it); values are bound at execution.
_STUDY_BY_CODE = select(Study).where(col(Study.code) == bindparam("code"))
def get_study(session: Session, code: str) -> Study:
    study = session.execute(_STUDY_BY_CODE, {"code": code}).scalar_one_or_none()
    if study is None:
        raise NotFound(_("no study with protocol number {code!r}").format(code=code),
                       field="study")
    return study


def get_study_by_id(session: Session, study_id: str) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(_("no such study"), field="study_id")
    return study


def list_studies(session: Session, *, actor: Actor) -> list[Study]:
    studies = session.execute(select(Study).order_by(col(Study.code))).scalars().all()
    return [s for s in studies if actor.can(Perm.STUDY_READ, s.code)]


def _check_site(site: SiteIn) -> None:
    if not SITE_CODE_RE.match(site.code):
        raise InvalidInput(_("site code {code!r} must look like S01").format(code=site.code),
                           field="sites.code")


def _add_protocol(session: Session, ledger: Ledger, *, actor: Actor, study: Study,
                  protocol: ProtocolIn, summary: str | None) -> ProtocolVersion:
    last = session.execute(select(func.max(col(ProtocolVersion.number))).where(
        col(ProtocolVersion.study_id) == study.id)).scalar()
    labels = set(session.execute(select(col(ProtocolVersion.label)).where(
        col(ProtocolVersion.study_id) == study.id)).scalars())
    if protocol.label in labels:
        raise Conflict(_("protocol version {label!r} already exists").format(label=protocol.label),
                       field="protocol.label")
    pv = ProtocolVersion(study_id=study.id, number=(last or 0) + 1, created_by=actor.username,
                         amendment_summary=summary, **protocol.model_dump())
    session.add(pv)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.PROTOCOL_AMEND if last else Action.PROTOCOL_CREATE,
                  entity_type="protocol_version", entity_id=pv.id, study=study.code,
                  version=pv.number, reason=summary,
                  changes=[Change(k, None, str(v)) for k, v in protocol.model_dump().items()])
    return pv


def register_study(session: Session, ledger: Ledger, *, actor: Actor,
                   data: StudyIn) -> Study:
    """Register a study with its protocol (version 1) and sites; status ``draft`` until its
    protocol is approved. A draft created by an import (no protocol yet) is completed."""
    require(actor, Perm.STUDY_MANAGE, study=data.code)
    if not CODE_RE.match(data.code):
        raise InvalidInput(_("protocol number: letters, digits, '.', '_' or '-'"),
                           field="code")
    if data.design not in DESIGNS:
        raise InvalidInput(_("design must be one of {DESIGNS}").format(DESIGNS=', '.join(DESIGNS)),
                           field="design")
    for s in data.sites:
        _check_site(s)
    if len({s.code for s in data.sites}) != len(data.sites):
        raise InvalidInput(_("site codes must be distinct"), field="sites.code")
    existing = session.execute(select(Study).where(
        col(Study.code) == data.code)).scalar_one_or_none()
    if existing is not None:
        has_protocol = session.execute(select(col(ProtocolVersion.id)).where(
            col(ProtocolVersion.study_id) == existing.id)).first()
        if has_protocol:
            raise Conflict(_("study {code!r} is already registered").format(code=data.code),
                           field="code")
        study = existing
        action = Action.STUDY_COMPLETE_DRAFT
    else:
        study = Study(code=data.code, title_zh="", title_en="")
        session.add(study)
        action = Action.STUDY_CREATE
    fields = {k: getattr(data, k) for k in ("title_zh", "title_en", "sponsor", *DESIGN_FLAGS)}
    changes = [Change(k, None if existing is None else getattr(study, k), v)
               for k, v in fields.items()]
    for k, v in fields.items():
        setattr(study, k, v)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=action,
                  entity_type="study", entity_id=study.id, study=study.code, changes=changes)
    _add_protocol(session, ledger, actor=actor, study=study, protocol=data.protocol,
                  summary=None)
    for s in data.sites:
        add_site(session, ledger, actor=actor, study_code=study.code, site=s)
    return study


def ensure_study(session: Session, ledger: Ledger, *, actor: Actor, code: str) -> Study:
    """The study with this protocol number, created as a bare draft if absent (imports)."""
    require(actor, Perm.STUDY_MANAGE, study=code)
    study = session.execute(select(Study).where(col(Study.code) == code)).scalar_one_or_none()
    if study is not None:
        return study
    if not CODE_RE.match(code):
        raise InvalidInput(_("protocol number: letters, digits, '.', '_' or '-'"),
                           field="study")
    study = Study(code=code, title_zh=code, title_en=code, status="draft")
    session.add(study)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.STUDY_CREATE,
                  entity_type="study", entity_id=study.id, study=code,
                  reason="created as a draft by a metadata import",
                  changes=[Change("status", None, "draft")])
    return study


def amend_protocol(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   protocol: ProtocolIn, summary: str) -> ProtocolVersion:
    """Record an amendment as a new protocol version. Until the ethics committee approves it,
    no subject can be enrolled and no data entered (§11.3.4.2)."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = get_study(session, study_code)
    if not summary.strip():
        raise InvalidInput(_("an amendment needs a summary of its changes"),
                           field="summary")
    if study.status == "closed":
        raise Conflict(_("the study is closed"), field="study")
    return _add_protocol(session, ledger, actor=actor, study=study, protocol=protocol,
                         summary=summary.strip())


def add_site(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
             site: SiteIn) -> Site:
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = get_study(session, study_code)
    _check_site(site)
    if session.execute(select(col(Site.id)).where(col(Site.study_id) == study.id,
                                                  col(Site.code) == site.code)).first():
        raise Conflict(_("site {code} already exists").format(code=site.code), field="code")
    row = Site(study_id=study.id, **site.model_dump())
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.SITE_CREATE,
                  entity_type="site", entity_id=row.id, study=study.code,
                  changes=[Change(k, None, v) for k, v in site.model_dump().items()])
    return row


def set_status(session: Session, ledger: Ledger, *, actor: Actor, study: Study, status: str,
               reason: str) -> None:
    if status not in STUDY_STATUSES:
        raise InvalidInput(_("unknown status"), field="status")
    if study.status == status:
        return
    before, study.status = study.status, status
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.STUDY_STATUS,
                  entity_type="study", entity_id=study.id, study=study.code, reason=reason,
                  changes=[Change("status", before, status)])


def protocol_versions(session: Session, study_id: str) -> list[ProtocolVersion]:
    return list(session.execute(select(ProtocolVersion).where(
        col(ProtocolVersion.study_id) == study_id).order_by(col(ProtocolVersion.number))).scalars())


def sites_of(session: Session, study_id: str) -> list[Site]:
    return list(session.execute(select(Site).where(col(Site.study_id) == study_id)
                                .order_by(col(Site.code))).scalars())


def study_public(study: Study) -> dict[str, Any]:
    return {"id": study.id, "code": study.code, "title_zh": study.title_zh,
            "title_en": study.title_en, "status": study.status, "sponsor": study.sponsor,
            **{k: getattr(study, k) for k in DESIGN_FLAGS}}


def protocol_public(pv: ProtocolVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"id": pv.id, "number": pv.number,
                           "amendment_summary": pv.amendment_summary,
                           "created_at": pv.created_at.isoformat(), "created_by": pv.created_by}
    for k in PROTOCOL_FIELDS:
        v = getattr(pv, k)
        out[k] = v.isoformat() if isinstance(v, dt.date) else v
    return out


def site_public(s: Site) -> dict[str, Any]:
    return {"id": s.id, "code": s.code, "hospital": s.hospital, "department": s.department,
            "medical_group": s.medical_group}


def operator_actor(name: str) -> Actor:
    """The actor for a server operator at the command line (``edc study …``): they may set
    studies up (as a data manager for every study) and nothing else. Recorded as ``cli:NAME``."""
    from studies.kernel.roles import Role

    return Actor(user_id=f"cli:{name}", username=f"cli:{name}"[:100],
                 display_name=f"command line ({name})", grants=((Role.DATA_MANAGER, None),),
                 client="cli")
