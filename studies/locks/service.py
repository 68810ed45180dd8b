"""Database lock and unlock (§11.3.4.7 a, SPEC §6).

A data manager locks a study, a site of it, one form across the study, or a list of subjects.
Locking serialises on the ledger head (the row every writer locks), reads the pre-lock report
(open queries, unverified forms, incomplete forms, forms changed after verification — an
override reason is needed while any is open), hashes the locked current values (SHA-256 over a
canonical dump), appends ``lock.set`` and takes a signed ledger checkpoint. While a lock covers
data, :func:`studies.guards.assert_writable` — called at the top of every write path — refuses
with 423 naming the lock, who set it and when, and the refusal is audited.

An unlock request names the changes (subjects / forms / fields), the reason, the planned date
and the period. The team is told in its inbox. It takes effect after three electronic
signatures — principal investigator, data manager, statistician — by three distinct people each
holding that role on the study; then it reopens exactly the listed data for the period,
invalidates signatures on the reopened records, and every change under it is linked to it in
the ledger (``unlock.change``). It ends when the period is over (``relock_expired``: on access
and by ``edc locks relock-expired``) or when the data manager re-locks. Withdrawn and rejected
requests stay on record; nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger, canonical_json
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature
from studies.accounts.service import DEFAULT_CONFIG
from studies.entry.models import CurrentValue, DataQuery, FormRecord
from studies.forms.models import Form
from studies.guards import CLAUSE_LOCK, as_utc, covers, lock_settings, serialise
from studies.kernel.actor import Actor, require
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
)
from studies.kernel.events import Action
from studies.kernel.roles import ROLE_LABELS, UNLOCK_SIGNERS, Perm, Role
from studies.locks.models import DataLock, LockSettings, SignatureInvalidation, UnlockRequest
from studies.locks.schemas import LockIn, UnlockIn
from studies.registry import service as registry
from studies.registry.models import Site, Study
from studies.signoff import service as sign_off
from studies.subjects.models import Subject

KINDS = ("entry", "sdv", "query", "enrolment", "consent", "randomisation")


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _text(value: str | None, field: str, *, required: bool = True,
          limit: int = 2000) -> str | None:
    t = (value or "").strip()
    if not t:
        if required:
            raise InvalidInput(f"{field}: required / 必填", field=field)
        return None
    if len(t) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters / 过长", field=field)
    return t


# ---- settings ---------------------------------------------------------------------------------

def update_settings(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    allow_query_answers: bool) -> LockSettings:
    require(actor, Perm.LOCK_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    row = session.get(LockSettings, study.id)
    before = row.allow_query_answers if row else False
    if row is None:
        row = LockSettings(study_id=study.id)
        session.add(row)
    row.allow_query_answers = allow_query_answers
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.LOCK_SETTINGS,
                  entity_type="lock_settings", entity_id=study.id, study=study.code,
                  changes=[Change("allow_query_answers", before, allow_query_answers)])
    return row


# ---- inbox ------------------------------------------------------------------------------------

# ---- scope, snapshot and pre-lock report ------------------------------------------------------

@dataclass
class Scope:
    study: Study
    scope: str
    site: Site | None = None
    form: Form | None = None
    subjects: list[Subject] | None = None

    @property
    def label(self) -> str:
        if self.scope == "study":
            return f"study {self.study.code} / 研究 {self.study.code}"
        if self.scope == "site" and self.site:
            return f"site {self.site.code} of {self.study.code} / 中心 {self.site.code}"
        if self.scope == "form" and self.form:
            return f"form {self.form.name} of {self.study.code} / 表单 {self.form.name}"
        codes = ", ".join(s.code for s in self.subjects or [])
        return f"subjects {codes} of {self.study.code} / 受试者 {codes}"[:500]


def _scopes_of(session: Session, study: Study, data: LockIn) -> list[Scope]:
    if data.scope == "study":
        return [Scope(study, "study")]
    if data.scope == "site":
        if not data.sites:
            raise InvalidInput("sites: name at least one site / 请选择中心", field="sites")
        out = []
        for code in dict.fromkeys(s.strip() for s in data.sites):
            site = session.execute(select(Site).where(col(Site.study_id) == study.id,
                                                      col(Site.code) == code)).scalar_one_or_none()
            if site is None:
                raise InvalidInput(f"sites: no site {code!r} in this study / 本研究中没有该中心",
                                   field="sites")
            out.append(Scope(study, "site", site=site))
        return out
    if data.scope == "form":
        if not data.forms:
            raise InvalidInput("forms: name at least one form / 请选择表单", field="forms")
        out = []
        for name in dict.fromkeys(f.strip() for f in data.forms):
            form = session.execute(select(Form).where(col(Form.study_id) == study.id,
                                                      col(Form.name) == name)).scalar_one_or_none()
            if form is None:
                raise InvalidInput(f"forms: no form {name!r} in this study / 本研究中没有该表单",
                                   field="forms")
            out.append(Scope(study, "form", form=form))
        return out
    codes = list(dict.fromkeys(c.strip() for c in data.subjects if c.strip()))
    if not codes:
        raise InvalidInput("subjects: name at least one subject / 请选择受试者",
                           field="subjects")
    subs = []
    for code in codes:
        subs.append(_subject(session, study, code, "subjects"))
    return [Scope(study, "subjects", subjects=subs)]


def _subject(session: Session, study: Study, code: str, field: str) -> Subject:
    s = session.execute(select(Subject).where(col(Subject.code) == code)).scalar_one_or_none()
    if s is None or s.study_id != study.id:
        raise InvalidInput(f"{field}: no subject {code!r} in this study / 本研究中没有该受试者",
                           field=field)
    return s


def _records_query(sc: Scope) -> Any:
    q = (select(FormRecord, col(Subject.code), col(Form.name))
         .join(Subject, col(Subject.id) == FormRecord.subject_id)
         .join(Form, col(Form.id) == FormRecord.form_id)
         .where(col(FormRecord.study_id) == sc.study.id))
    if sc.scope == "site" and sc.site:
        q = q.where(col(Subject.site_id) == sc.site.id)
    elif sc.scope == "form" and sc.form:
        q = q.where(col(FormRecord.form_id) == sc.form.id)
    elif sc.scope == "subjects":
        q = q.where(col(FormRecord.subject_id).in_(
            [s.id for s in sc.subjects or []]))
    return q


def snapshot(session: Session, sc: Scope) -> tuple[str, int]:
    """SHA-256 over the canonical dump of the current values in scope — one JSON line per
    value ``[subject, event, repeat, form, item, value, version]``, sorted — and the count."""
    recs = {r.id: (code, r.event_name, r.event_repeat, name)
            for r, code, name in session.execute(_records_query(sc))}
    rows: list[list[Any]] = []
    ids = list(recs)
    for i in range(0, len(ids), 500):
        for cv in session.execute(select(CurrentValue).where(
                col(CurrentValue.record_id).in_(ids[i:i + 500]))).scalars():
            rows.append([*recs[cv.record_id], cv.item_name, cv.value, cv.version])
    rows.sort(key=lambda r: canonical_json(r[:5]))
    h = hashlib.sha256()
    for r in rows:
        h.update(canonical_json(r).encode("utf-8") + b"\n")
    return h.hexdigest(), len(rows)


def _report(session: Session, sc: Scope) -> dict[str, Any]:
    from studies.entry import monitoring
    from studies.entry import service as entry

    settings = entry.get_settings(session, sc.study.id)
    out: dict[str, list[dict[str, Any]]] = {"open_queries": [], "unverified_forms": [],
                                             "incomplete_forms": [],
                                             "changed_after_verification": []}
    recs = list(session.execute(_records_query(sc)))
    by_id = {r.id: (r, code, name) for r, code, name in recs}
    for r, code, name in sorted(recs, key=lambda x: (x[1], x[0].event_name, x[2])):
        where = {"subject": code, "event": r.event_name, "repeat": r.event_repeat, "form": name}
        if r.status == "incomplete":
            out["incomplete_forms"].append(where)
        summ = monitoring.record_sdv_summary(session, settings, r, name, r.subject_id)
        if summ["pending"]:
            out["unverified_forms"].append({**where, "fields": summ["pending"]})
        if summ["changed_after_sdv"]:
            out["changed_after_verification"].append({**where,
                                                      "fields": summ["changed_after_sdv"]})
    if by_id:
        ids = list(by_id)
        for i in range(0, len(ids), 500):
            for q in session.execute(select(DataQuery).where(
                    col(DataQuery.record_id).in_(ids[i:i + 500]),
                    col(DataQuery.status) != "closed")).scalars():
                r, code, name = by_id[q.record_id]
                out["open_queries"].append({"subject": code, "event": r.event_name,
                                            "form": name, "item": q.item_name,
                                            "status": q.status, "id": q.id})
    return {**out, "counts": {k: len(v) for k, v in out.items()},
            "open": sum(len(v) for v in out.values())}


def prelock_report(session: Session, *, actor: Actor, study_code: str,
                   data: LockIn) -> list[dict[str, Any]]:
    """The pre-lock report for each lock ``data`` would set (read only)."""
    require(actor, Perm.LOCK_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    return [{"label": sc.label, **_report(session, sc)}
            for sc in _scopes_of(session, study, data)]


# ---- setting a lock ---------------------------------------------------------------------------

def _same(lock: DataLock, sc: Scope) -> bool:
    if lock.scope != sc.scope:
        return False
    if sc.scope == "site":
        return sc.site is not None and lock.site_id == sc.site.id
    if sc.scope == "form":
        return sc.form is not None and lock.form_id == sc.form.id
    if sc.scope == "subjects":
        return sorted(lock.subject_ids) == sorted(s.id for s in sc.subjects or [])
    return True


def set_locks(session: Session, ledger: Ledger, *, actor: Actor, study_code: str, data: LockIn,
              now: dt.datetime | None = None) -> list[DataLock]:
    """Set one lock per scope in ``data`` (see the module doc). Refused: without lock.manage
    (403); a scope already locked (409); open items in the pre-lock report without an
    override reason (422, field ``override_reason``)."""
    require(actor, Perm.LOCK_MANAGE, study=study_code)
    now = _now(now)
    study = registry.get_study(session, study_code)
    scopes = _scopes_of(session, study, data)
    override = _text(data.override_reason, "override_reason", required=False)
    serialise(session)
    existing = list(session.execute(select(DataLock).where(
        col(DataLock.study_id) == study.id)).scalars())
    made = []
    for sc in scopes:
        if any(_same(lock, sc) for lock in existing):
            raise Conflict(f"{sc.label} is already locked / 已锁定", field="scope",
                           clause=CLAUSE_LOCK)
        report = _report(session, sc)
        if report["open"] and not override:
            c = report["counts"]
            raise RuleViolation(
                f"{sc.label}: {c['open_queries']} open queries, {c['unverified_forms']} "
                f"unverified forms, {c['incomplete_forms']} incomplete forms, "
                f"{c['changed_after_verification']} forms changed after verification — give "
                "an override reason to lock anyway / 存在未解决事项，需填写强制锁定理由",
                field="override_reason", clause=CLAUSE_LOCK)
        digest, n = snapshot(session, sc)
        lock = DataLock(study_id=study.id, scope=sc.scope,
                        site_id=sc.site.id if sc.site else None,
                        form_id=sc.form.id if sc.form else None,
                        subject_ids=[s.id for s in sc.subjects or []], label=sc.label,
                        set_by=actor.username, set_at=now, checkpoint_size=0,
                        checkpoint_root="", snapshot_hash=digest, snapshot_values=n,
                        report=report, override_reason=override if report["open"] else None,
                        ledger_seq=0)
        entry = ledger.append(
            session, actor=actor.username, client=actor.client, action=Action.LOCK_SET,
            entity_type="data_lock", entity_id=lock.id, study=study.code,
            reason=lock.override_reason,
            changes=[Change("scope", None, sc.label), Change("snapshot_sha256", None, digest),
                     Change("snapshot_values", None, n),
                     Change("open_items", None, report["counts"])])
        cp = ledger.checkpoint(session, reason="lock")
        lock.checkpoint_size, lock.checkpoint_root = cp.tree_size, bytes(cp.root_hash).hex()
        lock.ledger_seq = entry.seq
        session.add(lock)
        session.flush()
        existing.append(lock)
        made.append(lock)
    sign_off.notify(session, study=study, kind="lock.set", by=actor.username,
           link=f"/studies/{study.code}/locks",
           text=f"{actor.display_name} locked: " + "; ".join(m.label for m in made)
           + " / 数据已锁定")
    return made


# ---- the write check --------------------------------------------------------------------------

# ---- reading locks ----------------------------------------------------------------------------

def list_locks(session: Session, *, actor: Actor, study_code: str) -> list[DataLock]:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    return list(session.execute(select(DataLock).where(col(DataLock.study_id) == study.id)
                                .order_by(col(DataLock.set_at))).scalars())


def lock_public(lock: DataLock) -> dict[str, Any]:
    return {"id": lock.id, "scope": lock.scope, "label": lock.label, "set_by": lock.set_by,
            "set_at": lock.set_at, "checkpoint_size": lock.checkpoint_size,
            "checkpoint_root": lock.checkpoint_root, "snapshot_sha256": lock.snapshot_hash,
            "snapshot_values": lock.snapshot_values, "report_counts": lock.report.get("counts"),
            "override_reason": lock.override_reason, "ledger_seq": lock.ledger_seq}


def verify_snapshot(session: Session, lock: DataLock) -> bool:
    """Whether the locked data still hashes to the lock's snapshot (no unlock since)."""
    study = session.get(Study, lock.study_id)
    assert study is not None
    sc = Scope(study, lock.scope, site=session.get(Site, lock.site_id) if lock.site_id else None,
               form=session.get(Form, lock.form_id) if lock.form_id else None,
               subjects=[s for s in (session.get(Subject, i) for i in lock.subject_ids) if s])
    return snapshot(session, sc)[0] == lock.snapshot_hash


# ---- unlock requests --------------------------------------------------------------------------

def unlock_content(req: UnlockRequest, study_code: str) -> str:
    """The exact text every signer is shown in full and signs (its SHA-256 is signed)."""
    lines = [f"解锁申请 / Unlock request {req.id}", f"研究 / Study: {study_code}",
             f"理由 / Reason: {req.reason}", f"计划日期 / Planned date: {req.planned_date}",
             f"解锁期限 / Period: {req.period_hours} hours / 小时",
             f"申请人 / Requested by: {req.requested_by}", "修改内容 / Changes to be made:"]
    for c in req.changes:
        fields = ", ".join(c["fields"]) if c.get("fields") else "all fields / 全部字段"
        form = c.get("form") or "all forms / 全部表单"
        lines.append(f"- subject {c['subject']}, form {form}, fields: {fields}")
    return "\n".join(lines) + "\n"


def request_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   data: UnlockIn, now: dt.datetime | None = None) -> UnlockRequest:
    """Raise an unlock request; the team is notified in its inbox. Refused: nothing locked
    (409); a subject/form/field not in the study or not locked (422)."""
    require(actor, Perm.UNLOCK_REQUEST, study=study_code)
    now = _now(now)
    study = registry.get_study(session, study_code)
    reason = _text(data.reason, "reason", limit=4000)
    if not data.changes:
        raise InvalidInput("changes: list the subjects/forms/fields to change / 请列出修改内容",
                           field="changes")
    locks = list(session.execute(select(DataLock).where(
        col(DataLock.study_id) == study.id)).scalars())
    if not locks:
        raise Conflict("nothing in this study is locked / 本研究没有锁定的数据", field="changes")
    changes = []
    for c in data.changes:
        subject = _subject(session, study, c.subject.strip(), "changes")
        form = None
        if c.form:
            form = session.execute(select(Form).where(
                col(Form.study_id) == study.id,
                col(Form.name) == c.form.strip())).scalar_one_or_none()
            if form is None:
                raise InvalidInput(f"changes: no form {c.form!r} in this study / 没有该表单",
                                   field="changes")
        fields = sorted({f.strip() for f in c.fields or [] if f.strip()}) or None
        if fields and form is None:
            raise InvalidInput("changes: fields need a form / 指定字段时须指定表单",
                               field="changes")
        if not any(covers(lk, subject.site_id, subject.id, form.id if form else None)
                   or (form is None and lk.scope == "form") for lk in locks):
            raise InvalidInput(f"changes: subject {subject.code} is not locked / 该数据未锁定",
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
           link=f"/studies/{study.code}/unlocks/{req.id}",
           text=f"{actor.display_name} requests an unlock of {len(changes)} item(s) from "
           f"{data.planned_date} for {data.period_hours} h: {reason} / 提出解锁申请，需主要研究者、"
           "数据管理员和统计师签名")
    return req


def get_request(session: Session, *, actor: Actor, study_code: str,
                request_id: str) -> UnlockRequest:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    req = session.get(UnlockRequest, request_id)
    if req is None or req.study_id != study.id:
        raise NotFound("no such unlock request in this study / 未找到该解锁申请",
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
        raise Conflict(f"the request is {req.status} / 该申请已{req.status}", field="request_id",
                       audit=dict(actor=actor.username, action=Action.UNLOCK_REQUEST_SIGN,
                                  entity_type="unlock_request", entity_id=req.id,
                                  study=study.code, outcome="denied", client=actor.client,
                                  reason=f"request is {req.status}"))
    if content_hash is not None and content_hash != req.content_hash:
        raise Conflict("the request shown differs from the request stored / 所示内容与申请不符",
                       field="content_hash")
    n = sign_off.signoff(session, ledger, actor=actor, study=study, entity_type="unlock_request",
                entity_id=req.id, content_hash=req.content_hash, role=role, roles=UNLOCK_SIGNERS,
                meaning=f"approve unlock as {role.value} / 以{ROLE_LABELS[role]}身份批准解锁",
                username=username, password=password, totp=totp, config=config)
    if n == len(UNLOCK_SIGNERS):
        _take_effect(session, ledger, req, study, actor, _now(now))
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
                          reason=f"data reopened by unlock {req.id} / 数据已解锁，签名失效")
    session.flush()
    sign_off.notify(session, study=study, kind="unlock.effective", by=actor.username,
           link=f"/studies/{study.code}/unlocks/{req.id}",
           text=f"unlock {req.id} is in effect until {req.ends_at:%Y-%m-%d %H:%M} UTC / 解锁已生效")


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
           link=f"/studies/{study.code}/unlocks/{req.id}",
           text=f"unlock request {req.id}: {to}" + (f" — {reason}" if reason else "")
           + {"relocked": " / 已重新锁定", "withdrawn": " / 已撤回",
              "rejected": " / 已驳回"}.get(to, ""))


def withdraw_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    request_id: str, reason: str, now: dt.datetime | None = None
                    ) -> UnlockRequest:
    """The requester (or a data manager) withdraws a pending request; it stays on record."""
    require(actor, Perm.UNLOCK_REQUEST, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    if req.requested_by != actor.username and not actor.can(Perm.LOCK_MANAGE, study_code):
        raise PermissionDenied("only the requester or the data manager may withdraw / "
                               "仅申请人或数据管理员可撤回", field="request_id")
    if req.status != "pending":
        raise Conflict(f"only a pending request can be withdrawn (it is {req.status}) / "
                       "仅待签名的申请可撤回", field="request_id")
    _close(session, ledger, req, to="withdrawn", by=actor.username, client=actor.client,
           reason=_text(reason, "reason"), now=_now(now))
    return req


def reject_unlock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                  request_id: str, reason: str, now: dt.datetime | None = None
                  ) -> UnlockRequest:
    """A signer rejects a pending request (with a reason); it stays on record."""
    require(actor, Perm.UNLOCK_SIGN, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    if req.status != "pending":
        raise Conflict(f"only a pending request can be rejected (it is {req.status}) / "
                       "仅待签名的申请可驳回", field="request_id")
    _close(session, ledger, req, to="rejected", by=actor.username, client=actor.client,
           reason=_text(reason, "reason"), now=_now(now))
    return req


def relock(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
           request_id: str, now: dt.datetime | None = None) -> UnlockRequest:
    """The data manager ends an active unlock before its period is over."""
    require(actor, Perm.LOCK_MANAGE, study=study_code)
    req = get_request(session, actor=actor, study_code=study_code, request_id=request_id)
    if req.status != "active":
        raise Conflict(f"only an active unlock can be re-locked (it is {req.status}) / "
                       "仅生效中的解锁可重新锁定", field="request_id")
    serialise(session)
    _close(session, ledger, req, to="relocked", by=actor.username, client=actor.client,
           reason="re-locked by the data manager / 数据管理员重新锁定", now=_now(now))
    return req


def relock_expired(session: Session, ledger: Ledger, *, now: dt.datetime | None = None,
                   study_id: str | None = None) -> list[str]:
    """Re-lock every active unlock whose period is over (idempotent); returns their ids."""
    now = _now(now)
    q = select(UnlockRequest).where(col(UnlockRequest.status) == "active")
    if study_id:
        q = q.where(col(UnlockRequest.study_id) == study_id)
    done = []
    for req in list(session.execute(q).scalars()):
        if req.ends_at is not None and as_utc(req.ends_at) <= now:
            serialise(session)
            _close(session, ledger, req, to="relocked", by="system", client=None,
                   reason="the unlock period ended / 解锁期限已到，自动重新锁定", now=now)
            done.append(req.id)
    return done


# ---- the lock panel ---------------------------------------------------------------------------

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
            "invalidated": [signatures._view(s).line() + " — invalidated / 已失效" for s in inv]}


def request_public(req: UnlockRequest) -> dict[str, Any]:
    return {"id": req.id, "status": req.status, "changes": [
        {k: c.get(k) for k in ("subject", "form", "fields")} for c in req.changes],
        "reason": req.reason, "planned_date": req.planned_date.isoformat(),
        "period_hours": req.period_hours, "content_sha256": req.content_hash,
        "requested_by": req.requested_by, "requested_at": req.requested_at,
        "effective_at": req.effective_at, "ends_at": req.ends_at, "closed_at": req.closed_at,
        "closed_by": req.closed_by, "close_reason": req.close_reason,
        "relock_snapshot_sha256": req.relock_snapshot_hash}


# ---- form input (pages) -----------------------------------------------------------------------

