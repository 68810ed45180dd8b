"""Unlock requests (§11.3.4.7 a): raised with the changes, reason, planned date and period; in
effect after the PI's, the data manager's and the statistician's sign-off (three distinct
people); they reopen exactly the listed data, invalidate signatures on it, and end by re-lock
(by the data manager, or when the period is over). Also the lock panel, which shows locks and
requests together."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature
from studies.accounts.service import DEFAULT_CONFIG
from studies.entry.models import FormRecord
from studies.forms.models import Form
from studies.guards import as_utc, covers, lock_settings, require_for_subject, serialise
from studies.kernel.actor import Actor, require
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from studies.kernel.events import Action
from studies.kernel.i18n import Msg, _, _l
from studies.kernel.roles import DATA_TEAM, ROLE_LABELS, UNLOCK_SIGNERS, Perm, Role
from studies.locks.models import DataLock, SignatureInvalidation, UnlockRequest
from studies.locks.schemas import UnlockIn
from studies.locks.service import (
    Scope,
    clean_text,
    list_locks,
    now_or,
    snapshot,
    subject_in,
)
from studies.registry import service as registry
from studies.registry.models import Site, Study
from studies.signoff import service as sign_off
from studies.subjects.models import Subject

# The inbox message when an unlock request ends without taking effect, or is re-locked.
ENDED = {"relocked": _l("unlock request {id}: re-locked{reason}"),
         "withdrawn": _l("unlock request {id}: withdrawn{reason}"),
         "rejected": _l("unlock request {id}: rejected{reason}")}


def unlock_content(req: UnlockRequest, study_code: str) -> str:
    """The exact text every signer is shown in full and signs (its SHA-256 is signed)."""
    lines = [_("Unlock request {id}").format(id=req.id), _("Study: {study_code}").format(
                                                    study_code=study_code),
             _("Reason: {reason}").format(reason=req.reason),
             _("Planned date: {planned_date}").format(
                                               planned_date=req.planned_date),
             f"解锁期限 / Period: {req.period_hours} hours / 小时",
             _("Requested by: {requested_by}").format(requested_by=req.requested_by),
             _("Changes to be made:")]
    for c in req.changes:
        fields = ", ".join(c["fields"]) if c.get("fields") else _("all fields")
        form = c.get("form") or _("all forms")
        lines.append(f"- subject {c['subject']}, form {form}, fields: {fields}")
    return "\n".join(lines) + "\n"


def request_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   data: UnlockIn, now: dt.datetime | None = None) -> UnlockRequest:
    """Raise an unlock request; the team is notified in its inbox. Refused: nothing locked
    (409); a subject/form/field not in the study or not locked (422)."""
    require(actor, Perm.UNLOCK_REQUEST, study=study_code)
    now = now_or(now)
    study = registry.get_study(session, study_code)
    reason = clean_text(data.reason, "reason", limit=4000)
    if not data.changes:
        raise InvalidInput(_("changes: list the subjects/forms/fields to change"),
                           field="changes")
    locks = list(session.execute(select(DataLock).where(
        col(DataLock.study_id) == study.id)).scalars())
    if not locks:
        raise Conflict(_("nothing in this study is locked"), field="changes")
    changes = []
    for c in data.changes:
        subject = subject_in(session, study, c.subject.strip(), "changes")
        require_for_subject(session, actor, Perm.UNLOCK_REQUEST, study=study, subject=subject)
        form = None
        if c.form:
            form = session.execute(select(Form).where(
                col(Form.study_id) == study.id,
                col(Form.name) == c.form.strip())).scalar_one_or_none()
            if form is None:
                raise InvalidInput(_("changes: no form {form!r} in this study").format(form=c.form),
                                   field="changes")
        fields = sorted({f.strip() for f in c.fields or [] if f.strip()}) or None
        if fields and form is None:
            raise InvalidInput(_("changes: fields need a form"),
                               field="changes")
        if not any(covers(lk, subject.site_id, subject.id, form.id if form else None)
                   or (form is None and lk.scope == "form") for lk in locks):
            raise InvalidInput(_("changes: subject {code} is not locked").format(code=subject.code),
                               field="changes")
        changes.append({"subject_id": subject.id, "subject": subject.code,
                        "form_id": form.id if form else None,
                        "form": form.name if form else None, "fields": fields})
    req = UnlockRequest(study_id=study.id, changes=changes, reason=reason or "",
                        planned_date=data.planned_date, period_hours=data.period_hours,
                        content_hash="", requested_by=actor.username, requested_at=now)
    req.content_hash = signatures.content_hash(unlock_content(req, study.code).encode())
    session.add(req)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.UNLOCK_REQUEST,
                  entity_type="unlock_request", entity_id=req.id, study=study.code,
                  reason=reason, changes=[Change("changes", None, changes),
                                          Change("planned_date", None, str(data.planned_date)),
                                          Change("period_hours", None, data.period_hours),
                                          Change("content_sha256", None, req.content_hash)])
    sign_off.notify(session, study=study, kind="unlock.request", by=actor.username,
           audience=UNLOCK_SIGNERS, link=f"/studies/{study.code}/unlocks/{req.id}",
           text=Msg("an unlock request waits for your signature: {display_name} requests an "
                    "unlock of {n_changes} item(s) from {planned_date} for {period_hours} h: "
                    "{reason}", display_name=actor.display_name, n_changes=len(changes),
                    planned_date=data.planned_date, period_hours=data.period_hours,
                    reason=reason))
    return req


def get_request(session: Session, *, actor: Actor, study_code: str,
                request_id: str) -> UnlockRequest:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    req = session.get(UnlockRequest, request_id)
    if req is None or req.study_id != study.id:
        raise NotFound(_("no such unlock request in this study"),
                       field="request_id")
    return req


def list_requests(session: Session, *, actor: Actor, study_code: str) -> list[UnlockRequest]:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    return list(session.execute(select(UnlockRequest).where(
        col(UnlockRequest.study_id) == study.id).order_by(
        col(UnlockRequest.requested_at))).scalars())


def sign_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                request_id: str, role: Role, username: str, password: str,
                totp: str | None = None, content_hash: str | None = None,
                config: AuthConfig = DEFAULT_CONFIG,
                now: dt.datetime | None = None) -> UnlockRequest:
    """Sign an unlock request in ``role`` (see :func:`signoff`); the third sign-off makes it
    effective. ``content_hash``, when given, must be the hash of the text the signer was shown
    (so a request cannot change under a signer's eyes)."""
    require(actor, Perm.UNLOCK_SIGN, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    study = session.get(Study, req.study_id)
    assert study is not None
    if req.status != "pending":
        raise Conflict(_("the request is {status}").format(status=req.status), field="request_id",
                       audit=dict(actor=actor.username, action=Action.UNLOCK_REQUEST_SIGN,
                                  entity_type="unlock_request", entity_id=req.id,
                                  study=study.code, outcome="denied", client=actor.client,
                                  reason=f"request is {req.status}"))
    if content_hash is not None and content_hash != req.content_hash:
        raise Conflict(_("the request shown differs from the request stored"),
                       field="content_hash")
    n = sign_off.signoff(session, ledger, actor=actor, study=study, entity_type="unlock_request",
                entity_id=req.id, content_hash=req.content_hash, role=role, roles=UNLOCK_SIGNERS,
                meaning=f"approve unlock as {role.value} / 以{ROLE_LABELS[role]}身份批准解锁",
                username=username, password=password, totp=totp, config=config)
    if n == len(UNLOCK_SIGNERS):
        _take_effect(session, ledger, req, study, actor, now_or(now))
    return req


def _take_effect(session: Session, ledger: Ledger, req: UnlockRequest, study: Study,
                 actor: Actor, now: dt.datetime) -> None:
    req.status, req.effective_at = "active", now
    req.ends_at = now + dt.timedelta(hours=req.period_hours)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.UNLOCK_EFFECTIVE,
                  entity_type="unlock_request", entity_id=req.id, study=study.code,
                  changes=[Change("status", "pending", "active"),
                           Change("ends_at", None, req.ends_at.isoformat())])
    # signatures on reopened data no longer stand (shown as invalidated)
    rec_ids: list[str] = []
    subj_ids = sorted({c["subject_id"] for c in req.changes})
    for c in req.changes:
        q = select(col(FormRecord.id)).where(col(FormRecord.subject_id) == c["subject_id"])
        if c.get("form_id"):
            q = q.where(col(FormRecord.form_id) == c["form_id"])
        rec_ids += list(session.execute(q).scalars())
    targets = [(t, i) for t, ids in (("form_record", rec_ids), ("subject", subj_ids))
               for i in ids]
    for etype, eid in targets:
        for sig in session.execute(select(Signature).where(
                col(Signature.entity_type) == etype, col(Signature.entity_id) == eid)).scalars():
            session.add(SignatureInvalidation(signature_id=sig.id, unlock_id=req.id, at=now))
            ledger.append(session, actor=actor.username, action=Action.SIGNATURE_INVALIDATE,
                          entity_type="e_signature", entity_id=sig.id, study=study.code,
                          reason=_("data reopened by unlock {id}").format(id=req.id))
    session.flush()
    sign_off.notify(session, study=study, kind="unlock.effective", by=actor.username,
           audience=DATA_TEAM, link=f"/studies/{study.code}/unlocks/{req.id}",
           text=Msg("unlock {id} is in effect until {ends_at} UTC", id=req.id,
                    ends_at=f"{req.ends_at:%Y-%m-%d %H:%M}"))


def invalidated(session: Session, signature_ids: list[str]) -> set[str]:
    if not signature_ids:
        return set()
    return set(session.execute(select(col(SignatureInvalidation.signature_id)).where(
        col(SignatureInvalidation.signature_id).in_(signature_ids))).scalars())


def _close(session: Session, ledger: Ledger, req: UnlockRequest, *, to: str, by: str,
           client: str | None, reason: str | None, now: dt.datetime) -> None:
    study = session.get(Study, req.study_id)
    assert study is not None
    before = req.status
    req.status, req.closed_at, req.closed_by, req.close_reason = to, now, by, reason
    changes = [Change("status", before, to)]
    if to == "relocked":
        digests = []
        for lock in session.execute(select(DataLock).where(
                col(DataLock.study_id) == study.id)).scalars():
            sc = Scope(study, lock.scope,
                       site=session.get(Site, lock.site_id) if lock.site_id else None,
                       form=session.get(Form, lock.form_id) if lock.form_id else None,
                       subjects=[s for s in (session.get(Subject, i) for i in lock.subject_ids)
                                 if s])
            digests.append(snapshot(session, sc)[0])
        req.relock_snapshot_hash = hashlib.sha256("".join(digests).encode()).hexdigest()
        changes.append(Change("snapshot_sha256", None, req.relock_snapshot_hash))
    session.flush()
    ledger.append(session, actor=by, client=client, action=Action(f"unlock.{to}"),
                  entity_type="unlock_request", entity_id=req.id, study=study.code,
                  reason=reason, changes=changes)
    if to == "relocked":
        ledger.checkpoint(session, reason="relock")
    sign_off.notify(session, study=study, kind=f"unlock.{to}", by=by,
           audience=DATA_TEAM, link=f"/studies/{study.code}/unlocks/{req.id}",
           text=Msg(ENDED[to], id=req.id, reason=f" — {reason}" if reason else ""))


def withdraw_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    request_id: str, reason: str, now: dt.datetime | None = None
                    ) -> UnlockRequest:
    """The requester (or a data manager) withdraws a pending request; it stays on record."""
    require(actor, Perm.UNLOCK_REQUEST, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    if req.requested_by != actor.username and not actor.can(Perm.LOCK_MANAGE, study_code):
        raise PermissionDenied(_("only the requester or the data manager may withdraw"),
                               field="request_id")
    if req.status != "pending":
        raise Conflict(_("only a pending request can be withdrawn (it is {status})").format(
                           status=req.status), field="request_id")
    _close(session, ledger, req, to="withdrawn", by=actor.username, client=actor.client,
           reason=clean_text(reason, "reason"), now=now_or(now))
    return req


def reject_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                  request_id: str, reason: str, now: dt.datetime | None = None
                  ) -> UnlockRequest:
    """A signer rejects a pending request (with a reason); it stays on record."""
    require(actor, Perm.UNLOCK_SIGN, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    if req.status != "pending":
        raise Conflict(_("only a pending request can be rejected (it is {status})").format(
                           status=req.status), field="request_id")
    _close(session, ledger, req, to="rejected", by=actor.username, client=actor.client,
           reason=clean_text(reason, "reason"), now=now_or(now))
    return req


def relock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
           request_id: str, now: dt.datetime | None = None) -> UnlockRequest:
    """The data manager ends an active unlock before its period is over."""
    require(actor, Perm.LOCK_MANAGE, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    if req.status != "active":
        raise Conflict(_("only an active unlock can be re-locked (it is {status})").format(
                           status=req.status), field="request_id")
    serialise(session)
    _close(session, ledger, req, to="relocked", by=actor.username, client=actor.client,
           reason=_("re-locked by the data manager"), now=now_or(now))
    return req


def relock_expired(session: Session, ledger: Ledger, *, now: dt.datetime | None = None,
                   study_id: str | None = None) -> list[str]:
    """Re-lock every active unlock whose period is over (idempotent); returns their ids."""
    now = now_or(now)
    q = select(UnlockRequest).where(col(UnlockRequest.status) == "active")
    if study_id:
        q = q.where(col(UnlockRequest.study_id) == study_id)
    done = []
    for req in list(session.execute(q).scalars()):
        if req.ends_at is not None and as_utc(req.ends_at) <= now:
            serialise(session)
            _close(session, ledger, req, to="relocked", by="system", client=None,
                   reason=_("the unlock period ended"), now=now)
            done.append(req.id)
    return done


def panel(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
          now: dt.datetime | None = None) -> dict[str, Any]:
    """What the lock panel shows: locks, unlock requests (expired ones re-locked first) and
    settings."""
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    relock_expired(session, ledger, now=now, study_id=study.id)
    return {"study": study, "locks": list_locks(session, actor=actor, study_code=study_code),
            "requests": list_requests(session, actor=actor, study_code=study_code),
            "settings": lock_settings(session, study.id)}


def request_view(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                 request_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """One request with the full text signers sign, its sign-offs, and signatures it
    invalidated."""
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    relock_expired(session, ledger, now=now, study_id=study.id)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    content = unlock_content(req, study.code)
    inv = session.execute(select(Signature).join(
        SignatureInvalidation, col(SignatureInvalidation.signature_id) == Signature.id).where(
        col(SignatureInvalidation.unlock_id) == req.id)).scalars()
    return {"request": req, "content": content,
            "content_ok": signatures.content_hash(content.encode()) == req.content_hash,
            "signoffs": sign_off.signoffs(session, "unlock_request", req.id),
            "missing": [r.value for r in UNLOCK_SIGNERS if r.value not in
                        {s.role for s in sign_off.signoffs(session, "unlock_request", req.id)}],
            "invalidated": [signatures.view_of(s).line() + " " + _("— invalidated") for s in inv]}


def request_public(req: UnlockRequest) -> dict[str, Any]:
    return {"id": req.id, "status": req.status, "changes": [
        {k: c.get(k) for k in ("subject", "form", "fields")} for c in req.changes],
        "reason": req.reason, "planned_date": req.planned_date.isoformat(),
        "period_hours": req.period_hours, "content_sha256": req.content_hash,
        "requested_by": req.requested_by, "requested_at": req.requested_at,
        "effective_at": req.effective_at, "ends_at": req.ends_at, "closed_at": req.closed_at,
        "closed_by": req.closed_by, "close_reason": req.close_reason,
        "relock_snapshot_sha256": req.relock_snapshot_hash}
