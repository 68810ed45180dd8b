"""Read-only views that gather a study's set-up in one place (for the API and the pages).

Kept apart from :mod:`studies.registry.service` because it reads ethics, consent and forms,
which themselves build on the registry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from studies import guards
from studies.consent import service as consent
from studies.consent.models import SCOPES
from studies.ethics import service as ethics
from studies.forms import service as forms
from studies.kernel.actor import Actor, require
from studies.kernel.errors import NotFound, PermissionDenied
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.overview.schemas import AmendmentIn
from studies.registry import service as registry
from studies.registry.models import Study
from studies.subjects.models import Subject


def _require_any(actor: Actor, perms: tuple[Perm, ...], study: str) -> None:
    if not any(actor.can(p, study) for p in perms):
        raise PermissionDenied(
            _("permission {value} is required").format(value=perms[0].value),
            clause="§11.3.4.1 a")


def study_overview(session: Session, *, actor: Actor, study_code: str,
                   at: dt.datetime) -> dict[str, Any]:
    """Everything about a study's set-up, and whether enrolment/entry is open (and why not).
    Readable by the study team and by the ethics committee, which reviews the protocol."""
    _require_any(actor, (Perm.STUDY_READ, Perm.ETHICS_RECORD), study_code)
    study = registry.get_study(session, study_code)
    readiness = consent.study_readiness(session, study_code=study_code, at=at)
    out: dict[str, Any] = {
        "study": registry.study_public(study),
        "readiness": readiness,
        "protocol_versions": [registry.protocol_public(p)
                              for p in registry.protocol_versions(session, study.id)],
        "sites": [registry.site_public(s) for s in registry.sites_of(session, study.id)],
        "approvals": [ethics.approval_public(session, a)
                      for a in ethics.approvals_of(session, study.id)],
        "waivers": [ethics.waiver_public(w) for w in ethics.waivers_of(session, study.id)],
        "consent_forms": [consent.consent_form_public(f)
                          for f in consent.consent_forms(session, study.id)],
        "forms": [],
        "events": [{"name": e.name, "label_zh": e.label_zh, "label_en": e.label_en,
                    "forms": e.form_names} for e in forms.events_of(session, study.id)],
    }
    if actor.can(Perm.STUDY_READ, study_code):
        out["forms"] = forms.list_forms(session, actor=actor, study_code=study_code)
    return out


def amend(session: Session, ledger: Any, *, actor: Actor, study_code: str,
          data: AmendmentIn) -> dict[str, Any]:
    pv = registry.amend_protocol(session, ledger, actor=actor, study_code=study_code,
                                 protocol=data.protocol, summary=data.summary)
    return registry.protocol_public(pv)


def consent_overview(session: Session, *, actor: Actor, study_code: str,
                     at: dt.datetime) -> dict[str, Any]:
    """The investigator's list: each subject (by code only), the consent in force and whether
    data entry is allowed now, with the reason when it is not."""
    require(actor, Perm.CONSENT_READ, study=study_code)
    study = registry.get_study(session, study_code)
    sites = actor.sites(Perm.CONSENT_READ, study.code)
    site_codes = guards.site_codes_of(session, study.id)
    rows = []
    for s in session.execute(select(Subject).where(col(Subject.study_id) == study.id)
                             .order_by(col(Subject.code))).scalars():
        if sites is not None and site_codes.get(s.site_id) not in sites:
            continue
        problem = guards.entry_problem(session, subject_id=s.id, at=at)
        rows.append({"subject_id": s.id, "code": s.code,
                     "scopes": [sc for sc in SCOPES
                                if guards.may_use(session, subject_id=s.id, scope=sc, at=at)],
                     "entry_allowed": problem is None,
                     "reason": problem[0] if problem else None})
    return {"study": registry.study_public(study),
            "readiness": consent.study_readiness(session, study_code=study_code, at=at),
            "subjects": rows}


def consent_page_data(session: Session, *, actor: Actor, study_code: str, subject_id: str,
                      at: dt.datetime) -> dict[str, Any]:
    """What the consent-capture page shows: the subject, the consent forms (text in full), the
    approved waivers, the consent history and whether entry is allowed."""
    history = consent.consent_history(session, actor=actor, study_code=study_code,
                                      subject_id=subject_id)
    study = registry.get_study(session, study_code)
    subject = session.get(Subject, subject_id)
    assert subject is not None  # consent_history checked it
    problem = guards.entry_problem(session, subject_id=subject_id, at=at)
    return {"study": registry.study_public(study), "subject": {"id": subject.id,
                                                              "code": subject.code},
            "forms": [consent.consent_form_public(f)
                      for f in consent.consent_forms(session, study.id)],
            "waivers": [ethics.waiver_public(w) for w in ethics.waivers_of(session, study.id)
                        if w.status == "approved"],
            "history": history, "entry_allowed": problem is None,
            "reason": problem[0] if problem else None,
            "readiness": consent.study_readiness(session, study_code=study_code, at=at)}


def use_decision(session: Session, *, actor: Actor, study_code: str, subject_id: str,
                 scope: str, at: dt.datetime) -> dict[str, Any]:
    """The answer of :func:`studies.consent.service.may_use` with its reason, for the API."""
    require(actor, Perm.CONSENT_READ, study=study_code)
    study = registry.get_study(session, study_code)
    subject = session.get(Subject, subject_id)
    if subject is None or subject.study_id != study.id:
        raise NotFound(_("no such subject in this study"),
                       field="subject_id")
    guards.require_for_subject(session, actor, Perm.CONSENT_READ, study=study, subject=subject)
    reason = guards.use_problem(session, subject_id=subject_id, scope=scope, at=at)
    return {"subject": subject.code, "scope": scope, "at": at.isoformat(),
            "allowed": reason is None, "reason": reason}


def ethics_overview(session: Session, *, actor: Actor, at: dt.datetime) -> dict[str, Any]:
    """The ethics committee's desk: committees (with the §11.3.2 e check), every study's
    protocol versions and decisions, and pending waiver requests."""
    require(actor, Perm.ETHICS_RECORD)
    studies = []
    for st in session.execute(select(Study).order_by(col(Study.code))).scalars():
        studies.append({
            "study": registry.study_public(st),
            "protocol_versions": [registry.protocol_public(p)
                                  for p in registry.protocol_versions(session, st.id)],
            "approvals": [ethics.approval_public(session, a)
                          for a in ethics.approvals_of(session, st.id)],
            "waivers": [ethics.waiver_public(w) for w in ethics.waivers_of(session, st.id)],
            "readiness": consent.study_readiness(session, study_code=st.code,
                                                 at=at)})
    return {"committees": [ethics.committee_public(session, c)
                           for c in ethics.list_committees(session)],
            "studies": studies}
