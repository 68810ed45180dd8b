"""Entering and correcting form data (§11.3.4.7 a–b, §11.3.4.9 b).

Every save is a new record version; nothing is overwritten or deleted. A save names the record
version it edits (``base_version``; 0 for a new record). When other saves came first, the save
is merged onto the newest version if none of the fields it changes (against the base version)
was changed since: their changes stay, its own are written as one more version. A field both
changed (to different values) is a real conflict, refused with both values and what changed
since (:func:`merge_onto_newest`); no update is ever lost. A change to saved data
(including empty → value and value → empty: ``None`` is a value like any other) needs a reason
per changed field; who, when, why, before and after are kept per field and in one ledger entry
per save whose ``version`` is the new record version.

Checks come from the form's metadata through :func:`studies.forms.service.check_values` (the
one checker): types, ranges, code lists, required, branching (hidden fields are neither
required nor stored) and calculations (computed here, never taken from the client).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import namedtuple
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.base import execute_core
from audit_trail.service import Change, Ledger
from studies import guards
from studies.entry.errors import CLAUSE_ENTRY, EntryInvalid, StaleVersion
from studies.entry.models import (
    SDV_MODES,
    STANDARD_REASONS,
    CurrentValue,
    EntryFile,
    EntrySettings,
    FormRecord,
    RecordVersion,
    ValueVersion,
)
from studies.entry.schemas import MAX_REASON, SaveIn, SettingsIn
from studies.forms import checks as form_checks
from studies.forms import service as forms
from studies.forms.models import Form, FormVersion, Item, StudyEvent
from studies.guards import assert_writable
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import Label, _, bilingual
from studies.kernel.ids import new_id
from studies.kernel.roles import Perm
from studies.registry import service as registry
from studies.registry.models import Site, Study
from studies.subjects.models import Subject

# recorded with the value, in both languages (the ledger is read by everyone)
REASON_CALC = bilingual("recalculated by the server")
REASON_HIDDEN = bilingual("hidden by branching logic")

FR: Table = FormRecord.__table__  # type: ignore[attr-defined]
RV: Table = RecordVersion.__table__  # type: ignore[attr-defined]
VV: Table = ValueVersion.__table__  # type: ignore[attr-defined]
CV: Table = CurrentValue.__table__  # type: ignore[attr-defined]


# ---- settings -------------------------------------------------------------------------------

class SettingsView(NamedTuple):
    """A study's data-entry settings as read (the defaults while the study has no row)."""

    study_id: str
    allow_incomplete: bool
    sdv_mode: str
    sdv_key_items: list[str]
    sdv_sample_percent: int
    reasons: dict[str, str]
    treating_roles: list[str] | None  # None: the defaults (``studies.entry.level5``)


_ES: Table = EntrySettings.__table__  # type: ignore[attr-defined]
_SETTINGS = select(*(_ES.c[f] for f in SettingsView._fields)).where(
    _ES.c.study_id == bindparam("study_id"))
_DEFAULT_SETTINGS = {name: f.get_default(call_default_factory=True)
                     for name, f in EntrySettings.model_fields.items()
                     if name in SettingsView._fields and name != "study_id"}


def get_settings(session: Session, study_id: str) -> SettingsView:
    row = execute_core(session, _SETTINGS, {"study_id": study_id}).first()
    if row is not None:
        return SettingsView(*row)
    defaults = {k: copy.copy(v) for k, v in _DEFAULT_SETTINGS.items()}
    return SettingsView(study_id=study_id, **defaults)


def study_settings(session: Session, *, actor: Actor, study_code: str) -> SettingsView:
    require(actor, Perm.ENTRY_READ, study=study_code)
    return get_settings(session, registry.get_study(session, study_code).id)


def reasons_of(settings: SettingsView | EntrySettings) -> dict[str, Label]:
    return {**STANDARD_REASONS, **(settings.reasons or {})}


def settings_public(s: SettingsView | EntrySettings) -> dict[str, Any]:
    return {"allow_incomplete": s.allow_incomplete, "sdv_mode": s.sdv_mode,
            "sdv_key_items": list(s.sdv_key_items or []),
            "sdv_sample_percent": s.sdv_sample_percent,
            "reasons": {k: str(v) for k, v in reasons_of(s).items()}}


def update_settings(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    data: SettingsIn) -> EntrySettings:
    """Set whether incomplete saves are allowed, which items need SDV (all, key items, a
    sample of subjects) and extra standard reasons. Audited field by field."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    if data.sdv_mode not in SDV_MODES:
        raise InvalidInput(_("sdv_mode must be one of {modes}").format(modes=", ".join(SDV_MODES)),
                           field="sdv_mode")
    for k, v in data.reasons.items():
        if not k.strip() or len(k) > 40 or not v.strip() or len(v) > MAX_REASON:
            raise InvalidInput(_("each reason needs a code (≤40) and a label (≤500)"),
                               field="reasons")
    if data.treating_roles is not None:
        from studies.entry.level5 import check_treating_roles

        data = data.model_copy(update={"treating_roles": check_treating_roles(
            data.treating_roles)})
    s = session.get(EntrySettings, study.id)
    if s is None:
        s = EntrySettings(study_id=study.id)
        session.add(s)
    changes = []
    for attr in ("allow_incomplete", "sdv_mode", "sdv_key_items", "sdv_sample_percent",
                 "reasons", "treating_roles"):
        before, after = getattr(s, attr), getattr(data, attr)
        if before != after:
            changes.append(Change(attr, before, after))
            setattr(s, attr, after)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ENTRY_SETTINGS, entity_type="study", entity_id=study.id,
                  study=study.code, changes=changes)
    return s


# ---- resolving what a request names ---------------------------------------------------------

@dataclass
class Target:
    study: Study
    subject: Subject
    site: Site
    event: StudyEvent
    repeat: int
    form: Form


def study_named(session: Session, code: str) -> Study:
    return registry.get_study(session, code)


# Statements on every save's path are built once; values are bound at execution.
_SUBJECT_AND_SITE = select(Subject, Site).join(Site, col(Site.id) == Subject.site_id).where(
    col(Subject.code) == bindparam("code"))
_EVENT = select(StudyEvent).where(col(StudyEvent.study_id) == bindparam("study_id"),
                                  col(StudyEvent.name) == bindparam("name"))
_RECORD = select(FR).where(
    FR.c.subject_id == bindparam("subject_id"), FR.c.event_name == bindparam("event_name"),
    FR.c.event_repeat == bindparam("repeat"), FR.c.form_id == bindparam("form_id"))
_CURRENT = select(CV.c.item_name, CV.c.value).where(CV.c.record_id == bindparam("record_id"))
_SUBJECT_VALUES = (select(CV.c.record_id, CV.c.item_name, CV.c.value)
                   .join(FR, FR.c.id == CV.c.record_id)
                   .where(FR.c.subject_id == bindparam("subject_id")))
# What a request names, in one query of rows when it all exists (the steps below name what
# does not): building five ORM objects per request cost more than the query.
_PARTS: list[Table] = [m.__table__ for m in (Study, Subject, Site, StudyEvent, Form)]  # type: ignore[union-attr]  # noqa: E501
_ROWS: list[Any] = [namedtuple(f"{t.name}_row", [c.key for c in t.c])  # type: ignore[misc]
                    for t in _PARTS]
_ST, _SU, _SI, _EV, _FO = _PARTS
_TARGET = (select(*_PARTS).select_from(_ST)
           .join(_SU, _SU.c.study_id == _ST.c.id).join(_SI, _SI.c.id == _SU.c.site_id)
           .join(_EV, _EV.c.study_id == _ST.c.id).join(_FO, _FO.c.study_id == _ST.c.id)
           .where(_ST.c.code == bindparam("study"), _SU.c.code == bindparam("subject"),
                  _EV.c.name == bindparam("event"), _FO.c.name == bindparam("form")))


def _target_parts(row: Any) -> list[Any]:
    """The study, subject, site, event and form of a ``_TARGET`` row, each a named tuple with
    its model's attribute names."""
    out, at = [], 0
    for table, kind in zip(_PARTS, _ROWS, strict=True):
        n = len(table.c)
        out.append(kind._make(row[at:at + n]))
        at += n
    return out


def subject_of(session: Session, study: Study, code: str) -> tuple[Subject, Site]:
    row = session.execute(_SUBJECT_AND_SITE, {"code": code}).first()
    if row is None or row[0].study_id != study.id:
        raise NotFound(_("no subject {code!r} in study {code2}").format(
                           code=code, code2=study.code),
                       field="subject")
    return row[0], row[1]


def event_of(session: Session, study: Study, name: str) -> StudyEvent:
    ev = session.execute(_EVENT, {"study_id": study.id, "name": name}).scalar_one_or_none()
    if ev is None:
        raise NotFound(_("no event {name!r} in study {code}").format(name=name, code=study.code),
                       field="event")
    return ev


def resolve(session: Session, *, actor: Actor, perm: Perm, study_code: str, subject_code: str,
            event_name: str, form_name: str, repeat: int = 1) -> Target:
    """Check the permission (for the subject's site) and that subject, event and form belong
    to this study — a form of another study is "not found" here."""
    require(actor, perm, study=study_code)
    found = execute_core(session, _TARGET, {"study": study_code, "subject": subject_code,
                                            "event": event_name, "form": form_name}).first()
    if found is not None:
        study, subject, site, event, form = _target_parts(found)
        require(actor, perm, study=study_code, site=site.code)
    else:  # something named does not exist: find out what, in order
        study = study_named(session, study_code)
        subject, site = subject_of(session, study, subject_code)
        require(actor, perm, study=study_code, site=site.code)
        event = event_of(session, study, event_name)
        form = forms.get_form(session, study, form_name)
    if event.form_names and form.name not in event.form_names:
        raise InvalidInput(_("form {name!r} is not collected at event {name2!r}").format(
                               name=form.name, name2=event.name), field="form")
    if repeat < 1 or repeat > 10_000 or (repeat > 1 and not event.repeating):
        raise InvalidInput(_("event repeat must be 1 unless the event repeats"),
                           field="repeat")
    return Target(study, subject, site, event, repeat, form)


def find_record(session: Session, t: Target) -> Any:
    """The form record of the target as read (a row with ``FormRecord``'s attribute names),
    or None."""
    return execute_core(session, _RECORD, {
        "subject_id": t.subject.id, "event_name": t.event.name, "repeat": t.repeat,
        "form_id": t.form.id}).first()


def current_values(session: Session, record_id: str) -> dict[str, Any]:
    rows = execute_core(session, _CURRENT, {"record_id": record_id})
    return {r.item_name: r.value for r in rows}


def values_and_context(session: Session, subject_id: str, record_id: str | None
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """In one query: a record's current values, and the subject's stored values on its other
    forms (branching logic and cross-form rules may refer to them)."""
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for r in execute_core(session, _SUBJECT_VALUES, {"subject_id": subject_id}):
        if r.record_id == record_id:
            values[r.item_name] = r.value
        elif r.value is not None:
            context[r.item_name] = r.value
    return values, context


def entry_version(session: Session, form: Form) -> FormVersion:
    v = forms.current_version(session, form)
    if v is None:
        raise NotFound(_("form {name!r} has no version").format(name=form.name), field="form")
    return v


def normalise_reason(reason: str | None, known: dict[str, Label], name: str) -> str | None:
    if reason is None or not str(reason).strip():
        return None
    text = str(reason).strip()
    if len(text) > MAX_REASON:
        raise InvalidInput(_("{name}: the reason is longer than {MAX_REASON} characters").format(
                               name=name, MAX_REASON=MAX_REASON), field=f"reasons.{name}")
    label = known.get(text)
    return text if label is None else bilingual(label)


def _changes_since(session: Session, record_id: str, base: int) -> list[dict[str, Any]]:
    rows = session.execute(select(ValueVersion).where(
        col(ValueVersion.record_id) == record_id, col(ValueVersion.version) > base)
        .order_by(col(ValueVersion.version), col(ValueVersion.item_name))).scalars()
    return [{"version": v.version, "field": v.item_name, "before": v.before, "after": v.after,
             "reason": v.reason, "by": v.saved_by, "at": v.saved_at.isoformat()} for v in rows]


def stale(session: Session, record: FormRecord | None, record_id: str | None,
          base: int) -> StaleVersion:
    current = record.version if record is not None else 0
    changes = _changes_since(session, record_id, base) if record_id else []
    return StaleVersion(
        _("this form was saved by someone else since version {base} (now version {current}); "
          "review their changes and save again").format(base=base, current=current),
        current_version=current, changes=changes)


# ---- saving ---------------------------------------------------------------------------------

@dataclass
class SaveResult:
    record_id: str
    version: int
    status: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    sdv_cleared: list[str] = field(default_factory=list)
    saved: bool = True
    merged_from: int | None = None

    def public(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "version": self.version, "status": self.status,
                "saved": self.saved, "changes": self.changes, "missing": self.missing,
                "sdv_cleared": self.sdv_cleared, "merged_from": self.merged_from}


@dataclass
class Prepared:
    """A checked save, ready to write: the full new state and the per-field changes."""

    status: str
    changes: list[tuple[str, Any, Any, str | None]]
    missing: list[str]


def prepare(items: list[Item], submitted: dict[str, Any], before: dict[str, Any], *,
            existing: bool, reasons: dict[str, str], known_reasons: dict[str, Label],
            incomplete: bool, allow_incomplete: bool, today: dt.date,
            context: dict[str, Any], batch: str | None = None) -> Prepared:
    """Check a whole-form submission against ``before`` (pure; no database).

    Items classified as direct identifiers are never entered here: identity lives only in
    the code index (§11.3.4.4 d), so a value for one is refused."""
    ident = {i.name for i in items if i.classification == "direct_identifier"}
    items = [i for i in items if i.name not in ident]
    refused = {n: _("direct identifiers are kept only in the code index, not in study "
                    "data") for n in ident
               if submitted.get(n) not in (None, "", [])}
    submitted = {k: v for k, v in submitted.items() if k not in ident}
    check = form_checks.check_values(items, submitted, today=today, context=context)
    changed = touched(items, submitted, check, before) if existing else []
    errors = {**refused, **check.errors}
    missing = sorted(n for n, m in errors.items() if m == forms_required_message())
    if incomplete and not allow_incomplete:
        raise InvalidInput(_("this study does not allow saving incomplete forms"),
                           field="incomplete", clause=CLAUSE_ENTRY)
    if incomplete:
        for n in missing:
            errors.pop(n)
    if errors:
        raise EntryInvalid(_("the form has errors; nothing was saved") + " "
                           + "; ".join(f"{k}: {v}" for k, v in errors.items()),
                           errors=errors, changed=changed, clause="§11.3.4.4 a")
    stored = [i for i in items if i.field_type != "descriptive"]
    calc = {i.name for i in items if i.field_type == "calc"}
    hidden = set(check.hidden)
    changes: list[tuple[str, Any, Any, str | None]] = []
    need: dict[str, str] = {}
    for i in stored:
        old, new = before.get(i.name), check.values.get(i.name)
        if old == new:  # NULL is a value: None → None is no change, None ↔ x is one
            continue
        reason: str | None
        if batch is not None:
            reason = batch
        elif not existing:
            reason = None
        elif i.name in calc:
            reason = REASON_CALC
        elif i.name in hidden:
            reason = REASON_HIDDEN
        else:
            reason = normalise_reason(reasons.get(i.name), known_reasons, i.name)
            if reason is None:
                need[i.name] = (_("a reason is required for this change"))
        changes.append((i.name, old, new, reason))
    if need:
        raise EntryInvalid(_("give a reason for each changed field; nothing was "
                             "saved") + " " + ", ".join(need),
                           errors={f"reasons.{k}": v for k, v in need.items()},
                           changed=changed, clause=CLAUSE_ENTRY)
    unknown = [k for k in reasons if k not in {i.name for i in stored}]
    if unknown:
        raise InvalidInput(_("reason for an unknown field {value!r}").format(value=unknown[0]),
                           field=f"reasons.{unknown[0]}")
    return Prepared(status="incomplete" if missing and incomplete else "complete",
                    changes=changes, missing=missing if incomplete else [])


def forms_required_message() -> str:
    return _("required")


_EMPTY: tuple[Any, ...] = (None, "", [])


def touched(items: list[Item], submitted: dict[str, Any], check: form_checks.EntryCheck,
            against: dict[str, Any]) -> list[str]:
    """The entered fields whose submitted value differs from ``against`` (the saved values,
    or those of a base version): what a save changes and so what needs a reason. Calculated
    fields and fields hidden by branching are the server's, never the user's change; a value
    that fails its check counts as changed (it is not what was saved)."""
    hidden = set(check.hidden)
    out = []
    for i in items:
        n = i.name
        if (i.field_type in ("descriptive", "calc") or n in hidden
                or i.classification == "direct_identifier"):
            continue
        raw = submitted.get(n)
        if n in check.errors and raw not in _EMPTY:
            out.append(n)
        elif check.values.get(n) != against.get(n):
            out.append(n)
    return out


def file_refs_refused(session: Session, items: list[Item], submitted: dict[str, Any],
                      subject_id: str) -> dict[str, str]:
    """A file field's value is the id of a file uploaded for that field of that subject
    (:mod:`studies.entry.files`); anything else is refused, by field."""
    wanted = {i.name: str(submitted[i.name]) for i in items
              if i.field_type == "file" and submitted.get(i.name) not in _EMPTY}
    if not wanted:
        return {}
    found = set(session.execute(select(col(EntryFile.id), col(EntryFile.item_name)).where(
        col(EntryFile.id).in_(list(wanted.values())),
        col(EntryFile.subject_id) == subject_id)).tuples())
    return {n: _("not a file uploaded for this field")
            for n, v in wanted.items() if (v, n) not in found}


def merge_onto_newest(session: Session, record: FormRecord, items: list[Item],
                      submitted: dict[str, Any], current: dict[str, Any], *, base: int,
                      today: dt.date, context: dict[str, Any]) -> dict[str, Any]:
    """A save based on version ``base`` of a record now at a later version: the submission
    to check against the newest values. Fields this save did not change (against ``base``)
    but others did take the others' values; fields this save changed keep its values. Raises
    :class:`StaleVersion` with both values per field when a field this save changed was
    changed since ``base`` to a different value (a real conflict)."""
    theirs: dict[str, dict[str, Any]] = {}
    for v in session.execute(select(VV.c.item_name, VV.c.before, VV.c.version, VV.c.saved_by,
                                    VV.c.saved_at).where(VV.c.record_id == record.id,
                                                         VV.c.version > base)
                             .order_by(VV.c.version)):
        first = theirs.setdefault(v.item_name, {"base": v.before})
        first.update(version=v.version, by=v.saved_by, at=v.saved_at.isoformat())
    at_base = {**current, **{n: t["base"] for n, t in theirs.items()}}
    mine = form_checks.check_values(items, submitted, today=today, context=context)
    changed = touched(items, submitted, mine, at_base)

    def yours(n: str) -> Any:
        return submitted.get(n) if n in mine.errors else mine.values.get(n)

    conflicts = [{"field": n, "base": theirs[n]["base"], "theirs": current.get(n),
                  "yours": yours(n), "by": theirs[n]["by"], "version": theirs[n]["version"],
                  "at": theirs[n]["at"]}
                 for n in changed if n in theirs and current.get(n) != yours(n)]
    merged = dict(submitted)
    for n in theirs:
        if n not in changed:
            if current.get(n) in _EMPTY:
                merged.pop(n, None)
            else:
                merged[n] = current[n]
    if conflicts:
        exc = stale(session, record, record.id, base)
        raise StaleVersion(
            _("{value}: changed by someone else since version {base} (now version {version}) as "
              "well as by you; choose which value to keep")
            .format(value=', '.join(c['field'] for c in conflicts), base=base,
                    version=record.version),
            current_version=record.version, changes=exc.changes, conflicts=conflicts,
            kept={**merged, **{c["field"]: submitted.get(c["field"]) for c in conflicts}},
            changed=changed)
    return merged


def write_version(session: Session, ledger: Ledger, *, actor: str, client: str | None,
                  study_code: str, subject_code: str, record_id: str, version: int,
                  status: str, changes: list[tuple[str, Any, Any, str | None]],
                  sdv_cleared: list[str], now: dt.datetime, batch: str | None,
                  action: str, lock_checked: bool = False,
                  stored: Collection[str] | None = None) -> int:
    """Write one record version: its value versions, the current values, and ONE ledger entry
    with every change (``version`` = the new record version). Returns the ledger sequence.

    ``lock_checked``: the caller has found, in this transaction, that no lock covers the
    record at all; otherwise the changed fields are checked against locks and unlocks here.
    ``stored``: the items that have a current-value row, if the caller has read them."""
    if not lock_checked:
        assert_writable(session, record_id=record_id,
                        fields=[c[0] for c in changes if c[3] not in (REASON_CALC, REASON_HIDDEN)],
                        at=now, actor=actor, client=client, ledger=ledger)
    ledger_changes = [Change(n, b, a) for n, b, a, _x in changes]
    ledger_changes += [Change(f"sdv:{n}", "verified", "cleared: changed after SDV")
                       for n in sdv_cleared]
    reasons = [f"{n}: {r}" for n, _x, _x, r in changes if r]
    reason = batch if batch else ("; ".join(reasons) if reasons else None)
    entry = ledger.append(session, actor=actor, client=client, action=action,
                          entity_type="form_record", entity_id=record_id, study=study_code,
                          subject=subject_code, version=version, reason=reason,
                          changes=ledger_changes)
    execute_core(session, insert(RV), [dict(
        id=new_id(), record_id=record_id, version=version, status=status, saved_at=now,
        saved_by=actor, client=client, ledger_seq=entry.seq, batch=batch)])
    if changes:
        execute_core(session, insert(VV), [dict(
            id=new_id(), record_id=record_id, item_name=n, version=version, before=b, after=a,
            reason=r, saved_at=now, saved_by=actor) for n, b, a, r in changes])
        if version == 1:
            execute_core(session, insert(CV), [dict(
                record_id=record_id, item_name=n, value=a, version=version)
                for n, _x, a, _x in changes])
        else:
            have = set(stored) if stored is not None else set(session.execute(
                select(CV.c.item_name).where(CV.c.record_id == record_id)).scalars())
            new_rows = [dict(record_id=record_id, item_name=n, value=a, version=version)
                        for n, _x, a, _x in changes if n not in have]
            if new_rows:
                execute_core(session, insert(CV), new_rows)
            for n, _x, a, _x in changes:
                if n in have:
                    execute_core(session, update(CV).where(
                        CV.c.record_id == record_id, CV.c.item_name == n)
                        .values(value=a, version=version))
    return entry.seq


def save_form(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
              subject_code: str, event_name: str, form_name: str, data: SaveIn,
              now: dt.datetime | None = None, today: dt.date | None = None) -> SaveResult:
    """Save a whole form for a subject and event as a new record version (see module doc).

    Refused — with nothing written — when: the actor may not enter data for the subject's
    site; the subject has no current ethics approval or valid consent (or has withdrawn);
    the save edits a stale version (409 with the changes since); a field fails its checks or
    is unknown (422 naming the field); a changed field lacks a reason."""
    now = now or dt.datetime.now(dt.UTC)
    today = today or now.date()
    t = resolve(session, actor=actor, perm=Perm.ENTRY_WRITE, study_code=study_code,
                subject_code=subject_code, event_name=event_name, form_name=form_name,
                repeat=data.repeat)
    unlock = assert_writable(session, study_id=t.study.id, subject_id=t.subject.id,
                             form_id=t.form.id, at=now, actor=actor.username, client=actor.client)
    guards.assert_entry_allowed(session, subject_id=t.subject.id, at=now)
    record = find_record(session, t)
    if record is None and data.base_version != 0:
        raise stale(session, None, None, data.base_version)
    if record is not None and record.version < data.base_version:
        raise stale(session, record, record.id, data.base_version)
    settings = get_settings(session, t.study.id)
    fv_id = record.form_version_id if record is not None else entry_version(session, t.form).id
    items = forms.item_rows(session, fv_id)
    before, context = values_and_context(session, t.subject.id,
                                         record.id if record is not None else None)
    submitted = dict(data.values)
    bad_files = file_refs_refused(session, items, submitted, t.subject.id)
    if bad_files:
        raise EntryInvalid(_("the form has errors; nothing was saved") + " "
                           + "; ".join(f"{k}: {v}" for k, v in bad_files.items()),
                           errors=bad_files, clause=CLAUSE_ENTRY)
    merged_from = None
    if record is not None and record.version != data.base_version:
        submitted = merge_onto_newest(session, record, items, submitted, before,
                                      base=data.base_version, today=today, context=context)
        merged_from = data.base_version
    prep = prepare(items, submitted, before, existing=record is not None,
                   reasons=dict(data.reasons), known_reasons=reasons_of(settings),
                   incomplete=data.incomplete, allow_incomplete=settings.allow_incomplete,
                   today=today, context=context)
    if record is not None and not prep.changes and prep.status == record.status:
        return SaveResult(record.id, record.version, record.status, saved=False)
    from studies.entry import monitoring

    if record is None:
        rid, version = new_id(), 1
        try:
            with session.begin_nested():
                execute_core(session, insert(FR), [dict(
                    id=rid, study_id=t.study.id, subject_id=t.subject.id,
                    event_name=t.event.name, event_repeat=t.repeat, form_id=t.form.id,
                    form_version_id=fv_id, version=1, status=prep.status, created_at=now,
                    created_by=actor.username)])
        except IntegrityError:  # another first save of the same form won the race
            raise stale(session, find_record(session, t), None, 0) from None
        cleared: list[str] = []
        action = Action.ENTRY_CREATE
    else:
        rid, version = record.id, record.version + 1
        res = execute_core(session, update(FR).where(
            FR.c.id == rid, FR.c.version == record.version)
            .values(version=version, status=prep.status))
        if res.rowcount != 1:  # another save in between
            raise stale(session, find_record(session, t), rid, data.base_version)
        cleared = monitoring.clear_changed(session, record_id=rid,
                                           changed=[c[0] for c in prep.changes],
                                           version=version, by=actor.username, now=now)
        action = Action.ENTRY_UPDATE
    write_version(session, ledger, actor=actor.username, client=actor.client,
                  study_code=t.study.code, subject_code=t.subject.code, record_id=rid,
                  version=version, status=prep.status, changes=prep.changes,
                  sdv_cleared=cleared, now=now, batch=None, action=action,
                  lock_checked=unlock is None, stored=before.keys())
    return SaveResult(rid, version, prep.status,
                      changes=[{"field": n, "before": b, "after": a, "reason": r}
                               for n, b, a, r in prep.changes],
                      missing=prep.missing, sdv_cleared=cleared, merged_from=merged_from)


# ---- reading --------------------------------------------------------------------------------

# ---- proving the materialised current values ------------------------------------------------

