"""The approval of internal exports (§11.3.4.1 c: 数据导出有完整的审批流程并存档).

A principal investigator, data manager or statistician (``entry.export``) asks to export a
study's clinical data — the whole study or some forms, with or without raw quasi-identifiers,
for a stated purpose. The request is approved (or rejected) by a signature: the PI's, or the
data security officer's; only the data security officer's when it asks for raw
quasi-identifiers. Nobody decides their own request. An approval lasts ``valid_days`` from its
decision.

Every export of clinical data (CSV, ODM, SPSS / Stata / SAS / R, the REDCap API's record
export by an ``entry.export`` holder) calls :func:`covering`: without an approved request of
the exporting user whose scope covers the forms, the export is refused (403 naming the rule
and the clause); with one, its id is written into the export's ledger entry, and
quasi-identifiers are exported only when it grants them raw.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature
from studies.accounts.service import DEFAULT_CONFIG
from studies.entry.models import ExportRequest
from studies.forms import service as forms
from studies.kernel.actor import Actor, require, require_different_person
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.labels import label
from studies.kernel.roles import (
    EXPORT_APPROVERS,
    GRANTS,
    RAW_QI_EXPORT_APPROVERS,
    ROLE_LABELS,
    Perm,
    Role,
)
from studies.registry import service as registry
from studies.registry.models import Study

CLAUSE = "§11.3.4.1 c"
MAX_DAYS = 90
MEANINGS = {True: "批准数据导出 / I approve this data export",
            False: "拒绝数据导出 / I reject this data export"}


def request_export(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   form_names: list[str] | None, raw_quasi_identifiers: bool, purpose: str,
                   valid_days: int = 30) -> ExportRequest:
    """Ask for an internal export of ``form_names`` (None or empty: the whole study)."""
    require(actor, Perm.ENTRY_EXPORT, study=study_code)
    study = registry.get_study(session, study_code)
    purpose = purpose.strip()
    if not purpose:
        raise InvalidInput(_("purpose: say what the export is for"),
                           field="purpose", clause=CLAUSE)
    if len(purpose) > 2000:
        raise InvalidInput(_("purpose: at most 2000 characters"),
                           field="purpose")
    if not 1 <= valid_days <= MAX_DAYS:
        raise InvalidInput(_("valid_days: 1–{MAX_DAYS}").format(MAX_DAYS=MAX_DAYS),
                           field="valid_days")
    chosen = sorted(set(form_names or [])) or None
    for name in chosen or []:
        forms.get_form(session, study, name)  # 404 naming the form
    role = next((r for r, s in actor.grants if (s is None or s == study.code)
                 and Perm.ENTRY_EXPORT in GRANTS.get(r, frozenset())), None)
    row = ExportRequest(study_id=study.id, requester_id=actor.user_id,
                        requested_by=actor.username, requester_role=str(role or ""),
                        forms=chosen, raw_quasi_identifiers=raw_quasi_identifiers,
                        purpose=purpose, valid_days=valid_days)
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.EXPORT_REQUEST, entity_type="export_request", entity_id=row.id,
                  study=study.code, reason=purpose,
                  changes=[Change("forms", None, chosen or "all"),
                           Change("raw_quasi_identifiers", None, raw_quasi_identifiers),
                           Change("valid_days", None, valid_days)])
    return row


def content_hash(study: Study, row: ExportRequest) -> str:
    """What the approver signs: the request's scope, purpose and requester."""
    return hashlib.sha256(json.dumps({
        "study": study.code, "request": row.id, "requested_by": row.requested_by,
        "forms": row.forms, "raw_quasi_identifiers": row.raw_quasi_identifiers,
        "purpose": row.purpose, "valid_days": row.valid_days}, sort_keys=True,
        ensure_ascii=False).encode()).hexdigest()


def approvers_of(row: ExportRequest) -> tuple[Role, ...]:
    return RAW_QI_EXPORT_APPROVERS if row.raw_quasi_identifiers else EXPORT_APPROVERS


def may_decide(actor: Actor, study_code: str, row: ExportRequest) -> bool:
    return row.requester_id != actor.user_id and any(
        r in approvers_of(row) for r, s in actor.grants if s is None or s == study_code)


def decide(session: Session, ledger: Ledger, *, actor: Actor, request_id: str, approve: bool,
           note: str, username: str, password: str, totp: str | None,
           now: dt.datetime | None = None,
           config: AuthConfig = DEFAULT_CONFIG) -> ExportRequest:
    """The signed decision on a pending request (see the module's docstring for who)."""
    row = session.get(ExportRequest, request_id)
    if row is None:
        raise NotFound(_("no such export request"), field="request_id")
    study = session.get(Study, row.study_id)
    assert study is not None
    require(actor, Perm.EXPORT_APPROVE, study=study.code)
    require_different_person(actor, row.requester_id, row.requested_by)
    held = [r for r, s in actor.grants if (s is None or s == study.code)
            and r in approvers_of(row)]
    if not held:
        who = " / ".join(str(ROLE_LABELS[r]) for r in approvers_of(row))
        raise PermissionDenied(
            _("this export must be approved by: {who}").format(who=who)
            + (_("; it includes raw quasi-identifiers")
               if row.raw_quasi_identifiers else ""), clause=CLAUSE)
    if row.status != "pending":
        raise Conflict(_("this request was already {status}").format(status=label(row.status)),
                       field="request_id", clause=CLAUSE)
    note = note.strip()
    if not approve and not note:
        raise InvalidInput(_("note: say why the export is rejected"),
                           field="note", clause=CLAUSE)
    sig = signatures.sign(session, ledger, actor=actor, username=username, password=password,
                          totp=totp, meaning=MEANINGS[approve],
                          content_hash=content_hash(study, row), entity_type="export_request",
                          entity_id=row.id, study=study.code, config=config)
    when = now or sig.signed_at
    row.status = "approved" if approve else "rejected"
    row.decided_by, row.decided_role = actor.username, held[0].value
    row.decided_at, row.decision_note, row.signature_id = when, note or None, sig.id
    row.expires_at = when + dt.timedelta(days=row.valid_days) if approve else None
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.EXPORT_DECIDE, entity_type="export_request", entity_id=row.id,
                  study=study.code, reason=note or None,
                  changes=[Change("status", "pending", row.status),
                           Change("role", None, held[0].value),
                           Change("signature", None, sig.id)])
    return row


@dataclass(frozen=True)
class RequestView:
    row: ExportRequest
    study: str
    may_decide: bool
    signature: str | None


def _views(session: Session, actor: Actor, rows: list[tuple[ExportRequest, Study]]
           ) -> list[RequestView]:
    out = []
    for r, s in rows:
        sig = session.get(Signature, r.signature_id) if r.signature_id else None
        out.append(RequestView(r, s.code, r.status == "pending" and may_decide(actor, s.code, r),
                               signatures.view_of(sig).line() if sig else None))
    return out


def requests_of_study(session: Session, *, actor: Actor, study_code: str) -> list[RequestView]:
    """The study's export requests the actor may see: their own; every one for an approver."""
    study = registry.get_study(session, study_code)
    if not (actor.can(Perm.ENTRY_EXPORT, study.code) or actor.can(Perm.EXPORT_APPROVE,
                                                                  study.code)):
        require(actor, Perm.ENTRY_EXPORT, study=study.code)
    q = (select(ExportRequest, Study).join(Study, col(Study.id) == ExportRequest.study_id)
         .where(col(ExportRequest.study_id) == study.id)
         .order_by(col(ExportRequest.created_at).desc()))
    if not actor.can(Perm.EXPORT_APPROVE, study.code):
        q = q.where(col(ExportRequest.requester_id) == actor.user_id)
    return _views(session, actor, [(r, s) for r, s in session.execute(q).tuples().all()])


def waiting_for(session: Session, *, actor: Actor) -> list[RequestView]:
    """Pending requests across the studies where the actor may decide them."""
    require(actor, Perm.EXPORT_APPROVE)
    q = (select(ExportRequest, Study).join(Study, col(Study.id) == ExportRequest.study_id)
         .where(col(ExportRequest.status) == "pending")
         .order_by(col(ExportRequest.created_at)))
    return [v for v in _views(session, actor, [(r, s) for r, s in
                                                session.execute(q).tuples().all()])
            if v.may_decide]


def covering(session: Session, *, actor: Actor, study: Study, form_names: list[str] | None,
             now: dt.datetime | None = None, required: bool = True) -> ExportRequest | None:
    """The actor's approved, unexpired request whose scope covers ``form_names`` (None: the
    whole study) — the newest one, preferring one that grants raw quasi-identifiers. Without
    one: refused (``required``) or None."""
    now = now or dt.datetime.now(dt.UTC)
    rows = session.execute(select(ExportRequest).where(
        col(ExportRequest.study_id) == study.id, col(ExportRequest.requester_id) == actor.user_id,
        col(ExportRequest.status) == "approved", col(ExportRequest.expires_at) > now)
        .order_by(col(ExportRequest.decided_at).desc())).scalars().all()
    wanted = set(form_names) if form_names else None
    fits = [r for r in rows if r.forms is None or (wanted is not None and wanted <= set(r.forms))]
    fits.sort(key=lambda r: not r.raw_quasi_identifiers)
    if fits:
        return fits[0]
    if not required:
        return None
    raise PermissionDenied(
        _("an internal export needs an approved export request (§11.3.4.1 c) covering {what}")
        .format(what=", ".join(sorted(wanted)) if wanted else _("the whole study"))
        + _("; request one on the study's export page (/studies/{code}/exports) and have it "
            "approved by the PI (or the data security officer for raw quasi-identifiers)")
          .format(code=study.code), clause=CLAUSE)


def with_quasi_identifiers(approval: ExportRequest | None) -> bool:
    return bool(approval and approval.raw_quasi_identifiers)


def audit_changes(approval: ExportRequest | None) -> list[Change]:
    """What an export's ledger entry records of the approval it used."""
    if approval is None:
        return [Change("quasi_identifiers", None, "left out")]
    return [Change("approval", None, approval.id),
            Change("approved_by", None, approval.decided_by),
            Change("quasi_identifiers", None,
                   "raw" if approval.raw_quasi_identifiers else "left out")]
