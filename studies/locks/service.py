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
from studies import guards
from studies.entry.models import CurrentValue, DataQuery, FormRecord
from studies.forms.models import Form
from studies.guards import CLAUSE_LOCK, serialise
from studies.kernel.actor import Actor, require, require_sites
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    RuleViolation,
)
from studies.kernel.events import Action
from studies.kernel.i18n import LazyText, Msg, _, _l, bilingual
from studies.kernel.roles import DATA_TEAM, Perm
from studies.locks.models import DataLock, LockSettings
from studies.locks.schemas import LockIn
from studies.registry import service as registry
from studies.registry.models import Site, Study
from studies.signoff import service as sign_off
from studies.subjects.models import Subject

KINDS = ("entry", "sdv", "query", "enrolment", "consent", "randomisation")


def now_or(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def clean_text(value: str | None, field: str, *, required: bool = True,
          limit: int = 2000) -> str | None:
    t = (value or "").strip()
    if not t:
        if required:
            raise InvalidInput(_("{field}: required").format(field=field), field=field)
        return None
    if len(t) > limit:
        raise InvalidInput(_("{field}: at most {limit} characters").format(
                               field=field, limit=limit), field=field)
    return t


# ---- settings ---------------------------------------------------------------------------------

def update_settings(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    allow_query_answers: bool) -> LockSettings:
    require(actor, Perm.LOCK_MANAGE, study=study_code, whole_study=True)
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

    def _label(self) -> tuple[LazyText, dict[str, str]]:
        if self.scope == "study":
            return _l("study {code}"), {"code": self.study.code}
        if self.scope == "site" and self.site:
            return _l("site {code} of {code2}"), {"code": self.site.code, "code2": self.study.code}
        if self.scope == "form" and self.form:
            return _l("form {name} of {code}"), {"name": self.form.name, "code": self.study.code}
        codes = ", ".join(s.code for s in self.subjects or [])
        return _l("subjects {codes} of {code}"), {"codes": codes, "code": self.study.code}

    @property
    def label(self) -> str:
        """The scope in the reader's language."""
        template, values = self._label()
        return template.format(**values)[:500]

    @property
    def stored_label(self) -> str:
        """The scope as the lock records it, read by everyone: in both languages."""
        template, values = self._label()
        return bilingual(template, **values)[:500]


def _scopes_of(session: Session, study: Study, data: LockIn) -> list[Scope]:
    if data.scope == "study":
        return [Scope(study, "study")]
    if data.scope == "site":
        if not data.sites:
            raise InvalidInput(_("sites: name at least one site"), field="sites")
        out = []
        for code in dict.fromkeys(s.strip() for s in data.sites):
            site = session.execute(select(Site).where(col(Site.study_id) == study.id,
                                                      col(Site.code) == code)).scalar_one_or_none()
            if site is None:
                raise InvalidInput(_("sites: no site {code!r} in this study").format(code=code),
                                   field="sites")
            out.append(Scope(study, "site", site=site))
        return out
    if data.scope == "form":
        if not data.forms:
            raise InvalidInput(_("forms: name at least one form"), field="forms")
        out = []
        for name in dict.fromkeys(f.strip() for f in data.forms):
            form = session.execute(select(Form).where(col(Form.study_id) == study.id,
                                                      col(Form.name) == name)).scalar_one_or_none()
            if form is None:
                raise InvalidInput(_("forms: no form {name!r} in this study").format(name=name),
                                   field="forms")
            out.append(Scope(study, "form", form=form))
        return out
    codes = list(dict.fromkeys(c.strip() for c in data.subjects if c.strip()))
    if not codes:
        raise InvalidInput(_("subjects: name at least one subject"),
                           field="subjects")
    subs = []
    for code in codes:
        subs.append(subject_in(session, study, code, "subjects"))
    return [Scope(study, "subjects", subjects=subs)]


def _require_scope(session: Session, actor: Actor, perm: Perm, scopes: list[Scope]) -> None:
    """The actor holds ``perm`` at every site the scopes reach: a lock or report of the whole
    study or of a form needs a study-wide grant; of a site or of subjects, a grant there."""
    for sc in scopes:
        sites: set[str] | None = None
        if sc.scope == "site" and sc.site:
            sites = {sc.site.code}
        elif sc.scope == "subjects":
            codes = guards.site_codes_of(session, sc.study.id)
            sites = {codes[s.site_id] for s in sc.subjects or []}
        require_sites(actor, perm, study=sc.study.code, sites=sites)


def subject_in(session: Session, study: Study, code: str, field: str) -> Subject:
    s = session.execute(select(Subject).where(col(Subject.code) == code)).scalar_one_or_none()
    if s is None or s.study_id != study.id:
        raise InvalidInput(_("{field}: no subject {code!r} in this study").format(
                               field=field, code=code),
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
    scopes = _scopes_of(session, study, data)
    _require_scope(session, actor, Perm.LOCK_MANAGE, scopes)
    return [{"label": sc.label, **_report(session, sc)} for sc in scopes]


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
    now = now_or(now)
    study = registry.get_study(session, study_code)
    scopes = _scopes_of(session, study, data)
    _require_scope(session, actor, Perm.LOCK_MANAGE, scopes)
    override = clean_text(data.override_reason, "override_reason", required=False)
    serialise(session)
    existing = list(session.execute(select(DataLock).where(
        col(DataLock.study_id) == study.id)).scalars())
    made = []
    for sc in scopes:
        if any(_same(lock, sc) for lock in existing):
            raise Conflict(_("{label} is already locked").format(label=sc.label), field="scope",
                           clause=CLAUSE_LOCK)
        report = _report(session, sc)
        if report["open"] and not override:
            c = report["counts"]
            raise RuleViolation(
                _("{label}: {open_queries} open queries, {unverified_forms} unverified forms, "
                  "{incomplete_forms} incomplete forms, {changed_after_verification} forms "
                  "changed after verification — give an override reason to lock anyway")
                .format(label=sc.label, open_queries=c['open_queries'],
                        unverified_forms=c['unverified_forms'],
                        incomplete_forms=c['incomplete_forms'],
                        changed_after_verification=c['changed_after_verification']),
                field="override_reason", clause=CLAUSE_LOCK)
        digest, n = snapshot(session, sc)
        lock = DataLock(study_id=study.id, scope=sc.scope,
                        site_id=sc.site.id if sc.site else None,
                        form_id=sc.form.id if sc.form else None,
                        subject_ids=[s.id for s in sc.subjects or []], label=sc.stored_label,
                        set_by=actor.username, set_at=now, checkpoint_size=0,
                        checkpoint_root="", snapshot_hash=digest, snapshot_values=n,
                        report=report, override_reason=override if report["open"] else None,
                        ledger_seq=0)
        entry = ledger.append(
            session, actor=actor.username, client=actor.client, action=Action.LOCK_SET,
            entity_type="data_lock", entity_id=lock.id, study=study.code,
            reason=lock.override_reason,
            changes=[Change("scope", None, sc.stored_label),
                     Change("snapshot_sha256", None, digest),
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
           audience=DATA_TEAM, link=f"/studies/{study.code}/locks",
           text=Msg("{display_name} locked: {locks}", display_name=actor.display_name,
                    locks="; ".join(m.label for m in made)))  # as recorded: both languages
    return made


# ---- the write check --------------------------------------------------------------------------

# ---- reading locks ----------------------------------------------------------------------------

def list_locks(session: Session, *, actor: Actor, study_code: str) -> list[DataLock]:
    require(actor, Perm.LOCK_READ, study=study_code)
    study = registry.get_study(session, study_code)
    return list(session.execute(select(DataLock).where(col(DataLock.study_id) == study.id)
                                .order_by(col(DataLock.set_at))).scalars())


def shown_label(session: Session, lock: DataLock) -> str:
    """A lock's scope in the reader's language (the lock records it in both)."""
    study = session.get(Study, lock.study_id)
    assert study is not None
    return Scope(study, lock.scope, site=session.get(Site, lock.site_id) if lock.site_id else None,
                 form=session.get(Form, lock.form_id) if lock.form_id else None,
                 subjects=[s for i in lock.subject_ids if (s := session.get(Subject, i))]).label


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

# ---- the lock panel ---------------------------------------------------------------------------

# ---- form input (pages) -----------------------------------------------------------------------

