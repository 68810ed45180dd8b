"""A subject's requests (§7 f: correction or completion of inaccurate data; §7 h: restriction
of use or disclosure). The custodian records the request in the subject's words (the subject
is known to them by identity); it is routed, by subject code only, to the study team at the
subject's site — the investigator's list of subject requests. A correction is resolved once
the data were changed the normal way, on the form, with a reason naming the request's
reference; a restriction by withdrawing consent scopes against the request
(:func:`studies.consent.service.withdraw_consent`, its reason naming the request), or declined
with a note (the controller need not agree, §7 h). Every step is a ledger entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.consent import service as consent
from studies.consent.schemas import WithdrawalIn
from studies.entry.models import FormRecord, ValueVersion
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l
from studies.kernel.roles import Perm
from studies.registry.models import Study
from studies.registry.service import get_study
from studies.subjects import code_index
from studies.subjects.models import SUBJECT_REQUEST_KINDS, Subject, SubjectRequest
from studies.subjects.service import plain_text

CLAUSES = {"correction": "§7 f", "restriction": "§7 h"}
KIND_LABELS = {"correction": _l("Correction or completion"),
               "restriction": _l("Restriction of use or disclosure")}
MAX_TEXT = 4000


def record(session: Session, ledger: Ledger, *, actor: Actor, code: str, kind: str,
           text: str, reason: str) -> SubjectRequest:
    """The custodian records a subject's request (in their words) against the subject code."""
    require(actor, Perm.CODE_INDEX_EXPORT)
    why = code_index._reason(reason)
    if kind not in SUBJECT_REQUEST_KINDS:
        raise InvalidInput(_("kind: correction or restriction"),
                           field="kind")
    text = " ".join(text.split())
    plain_text(text, field="text", max_len=MAX_TEXT)
    if not text:
        raise InvalidInput(_("text: the subject's request, in their words"),
                           field="text", clause=CLAUSES[kind])
    entry, study, subject, _site = code_index._exported(session, actor, code_index._code(code))
    row = SubjectRequest(study_id=study.id, subject_id=subject.id, reference="", kind=kind,
                         text=text, recorded_by=actor.username)
    row.reference = "SR-" + row.id.replace("-", "")[:8].upper()
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.SUBJECT_REQUEST_RECORD, entity_type="subject_request",
                  entity_id=row.id, study=study.code, subject=entry.code, reason=why,
                  changes=[Change("kind", None, kind), Change("reference", None, row.reference)])
    return row


@dataclass(frozen=True)
class RequestView:
    request: SubjectRequest
    subject_code: str
    site_code: str


def for_study(session: Session, *, actor: Actor, study_code: str,
              status: str | None = "open") -> list[RequestView]:
    """The study's subject requests at the actor's sites (the investigator's list)."""
    require(actor, Perm.ENTRY_WRITE, study=study_code)
    study = get_study(session, study_code)
    sites = guards.site_codes_of(session, study.id)
    q = select(SubjectRequest, Subject).join(
        Subject, col(Subject.id) == col(SubjectRequest.subject_id)).where(
        col(SubjectRequest.study_id) == study.id)
    if status is not None:
        q = q.where(col(SubjectRequest.status) == status)
    out = []
    for req, subj in session.execute(q.order_by(col(SubjectRequest.created_at))).all():
        site = sites.get(subj.site_id, "")
        if actor.can(Perm.ENTRY_WRITE, study.code, site=site):
            out.append(RequestView(req, subj.code, site))
    return out


def get(session: Session, *, study_code: str, request_id: str) -> SubjectRequest:
    study = get_study(session, study_code)
    req = session.get(SubjectRequest, request_id)
    if req is None or req.study_id != study.id:
        raise NotFound(_("no such subject request"), field="request_id")
    return req


def _open(session: Session, actor: Actor, study_code: str, request_id: str,
          kind: str | None, perm: Perm) -> tuple[SubjectRequest, Subject]:
    study = get_study(session, study_code)
    req = get(session, study_code=study_code, request_id=request_id)
    subject = session.get(Subject, req.subject_id)
    assert subject is not None
    guards.require_for_subject(session, actor, perm, study=study, subject=subject)
    if req.status != "open":
        raise Conflict(_("the request is already {status}").format(status=req.status),
                       field="request_id", clause=CLAUSES[req.kind])
    if kind is not None and req.kind != kind:
        raise Conflict(_("this is a {kind} request").format(kind=req.kind), field="request_id",
                       clause=CLAUSES[req.kind])
    return req, subject


def _note(note: str, req: SubjectRequest) -> str:
    note = " ".join(note.split())
    plain_text(note, field="note", max_len=MAX_TEXT)
    if not note:
        raise InvalidInput(_("note: say what was done"), field="note",
                           clause=CLAUSES[req.kind])
    return note


def _close(session: Session, ledger: Ledger, actor: Actor, req: SubjectRequest,
           subject: Subject, status: str, note: str, now: dt.datetime,
           extra: list[Change]) -> SubjectRequest:
    req.status, req.resolution, req.resolved_by, req.resolved_at = (
        status, note, actor.username, now)
    session.flush()
    study = get_study(session, _study_code(session, req))
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.SUBJECT_REQUEST_RESOLVE if status == "resolved"
                  else Action.SUBJECT_REQUEST_DECLINE, entity_type="subject_request",
                  entity_id=req.id, study=study.code, subject=subject.code,
                  reason=f"{req.reference}: {note}",
                  changes=[Change("status", "open", status), *extra])
    return req


def subject_code(session: Session, req: SubjectRequest) -> str:
    subject = session.get(Subject, req.subject_id)
    assert subject is not None
    return subject.code


def _study_code(session: Session, req: SubjectRequest) -> str:
    study = session.get(Study, req.study_id)
    assert study is not None
    return study.code


def resolve_correction(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                       request_id: str, note: str, now: dt.datetime) -> SubjectRequest:
    """Close a correction request once a change to the subject's data, saved after the
    request with a reason naming its reference, exists (the change itself is the normal
    audited save on the form)."""
    req, subject = _open(session, actor, study_code, request_id, "correction",
                         Perm.ENTRY_WRITE)
    note = _note(note, req)
    changes = session.execute(select(ValueVersion).join(
        FormRecord, col(FormRecord.id) == col(ValueVersion.record_id)).where(
        col(FormRecord.subject_id) == subject.id,
        col(ValueVersion.saved_at) >= req.created_at,
        col(ValueVersion.reason).contains(req.reference))).scalars().all()
    if not changes:
        raise Conflict(_("first correct the data on the form, with a reason naming "
                         "{reference}").format(reference=req.reference),
                       field="request_id", clause=CLAUSES["correction"])
    return _close(session, ledger, actor, req, subject, "resolved", note, now,
                  [Change("changed", None, ", ".join(
                      f"{c.item_name} v{c.version}" for c in changes))])


def resolve_restriction(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                        request_id: str, scopes: list[str], note: str,
                        now: dt.datetime) -> SubjectRequest:
    """Agree to a restriction: withdraw the named consent scopes of the subject's current
    consent, the withdrawal's reason naming the request."""
    req, subject = _open(session, actor, study_code, request_id, "restriction",
                         Perm.CONSENT_RECORD)
    note = _note(note, req)
    if not scopes:
        raise InvalidInput(_("scopes: choose the consent scopes to withdraw"),
                           field="scopes", clause=CLAUSES["restriction"])
    records = consent.records_of(session, subject.id)
    if not records:
        raise Conflict(_("the subject has no consent record"),
                       field="request_id")
    rec = records[-1]
    consent.withdraw_consent(session, ledger, actor=actor, study_code=study_code,
                             consent_id=rec.id, data=WithdrawalIn(
                                 scopes=scopes, withdrawn_at=now,
                                 reason=f"{req.reference}: {note}"))
    req.consent_id, req.scopes = rec.id, list(scopes)
    return _close(session, ledger, actor, req, subject, "resolved", note, now,
                  [Change("scopes_withdrawn", None, ", ".join(scopes))])


def decline(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
            request_id: str, note: str, now: dt.datetime) -> SubjectRequest:
    """Decline a request with a note saying why (a restriction need not be agreed, §7 h; a
    correction the data show to be accurate)."""
    req, subject = _open(session, actor, study_code, request_id, None, Perm.ENTRY_WRITE)
    if not actor.can(Perm.STUDY_MANAGE, study_code):
        raise PermissionDenied(_("declining a subject's request is the PI's"),
                               clause=CLAUSES[req.kind])
    note = _note(note, req)
    return _close(session, ledger, actor, req, subject, "declined", note, now, [])
