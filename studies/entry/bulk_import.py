"""Bulk import of records from a REDCap flat CSV (retrospective studies, §11.3.1 a).

Layout: one row per subject-event; the first column is the record id (the subject code,
which must already be enrolled — identity belongs to the code index, never to this file);
``redcap_event_name`` (``baseline_arm_1`` or ``baseline``), optional
``redcap_repeat_instance`` and ``redcap_repeat_instrument``; one column per item, and
``item___code`` (0/1) for each choice of a checkbox item; ``<form>_complete`` columns are
ignored.

All rows or none: the file is streamed row by row (constant memory), each row checked with the
same rules as a save from a form (:func:`studies.entry.service.prepare`), and written in
batches inside the caller's one transaction; any error makes the whole import fail with a row-
and column-numbered report (the caller rolls back). Each imported value is a value version in
a ledger entry whose reason is the import's batch id; a final ``entry.import_batch`` entry
records the file's SHA-256 and the counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlmodel
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from audit_trail.service import Change, Ledger
from studies import guards
from studies.entry import service as entry
from studies.entry.errors import EntryInvalid, ImportRefused
from studies.entry.models import FormRecord
from studies.forms import service as forms
from studies.forms.models import Item
from studies.guards import assert_writable
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.ids import new_id
from studies.kernel.roles import Perm
from studies.registry.models import Site
from studies.subjects.models import Subject

MAX_ERRORS = 200
CHUNK = 500
_ARM = re.compile(r"_arm_\d+$")
CSV_FIELD_LIMIT = 20_000


@dataclass
class _FormPlan:
    name: str
    form_id: str
    version_id: str
    items: list[Item]
    columns: dict[str, list[tuple[int, str | None]]]  # item → [(column index, checkbox code)]


def new_batch_id(now: dt.datetime) -> str:
    return f"IMP-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def import_redcap_csv(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                      lines: Iterable[str], now: dt.datetime | None = None,
                      batch: str | None = None,
                      progress: Callable[[int], None] | None = None,
                      today: dt.date | None = None) -> dict[str, Any]:
    """Import every row or none (see module doc). ``lines`` is any iterable of text lines
    (an open file); ``progress`` is called with the number of rows read every CHUNK rows."""
    require(actor, Perm.ENTRY_IMPORT, study=study_code)
    now = now or dt.datetime.now(dt.UTC)
    today = today or now.date()
    batch = batch or new_batch_id(now)
    study = entry.study_named(session, study_code)
    csv.field_size_limit(CSV_FIELD_LIMIT)
    digest = hashlib.sha256()

    def hashed() -> Iterable[str]:
        for line in lines:
            digest.update(line.encode())
            yield line

    reader = csv.reader(hashed())
    errors: list[dict[str, Any]] = []

    def err(row: int, col: int, field: str, message: str) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append({"row": row, "column": col, "field": field, "message": message})

    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(_("the file is empty"), field="file") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(_("row 1: not a CSV file: {exc}").format(exc=exc),
                           field="file") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    plans, special = _plan(session, study.id, header, err)
    events = {e.name: e for e in forms.events_of(session, study.id)}
    settings = entry.get_settings(session, study.id)
    known_reasons = entry.reasons_of(settings)
    subjects: OrderedDict[str, tuple[Subject, Site] | None] = OrderedDict()
    allowed: OrderedDict[str, str | None] = OrderedDict()
    seen: set[bytes] = set()  # 12 bytes a record: duplicate rows within the file
    existing: OrderedDict[str, set[tuple[str, int, str]]] = OrderedDict()
    sites = actor.sites(Perm.ENTRY_IMPORT, study.code)
    counts = {"rows": 0, "records": 0, "values": 0}
    buf: dict[str, list[dict[str, Any]]] = {"fr": [], "rv": [], "vv": [], "cv": []}

    def flush() -> None:
        for key, table in (("fr", entry.FR), ("rv", entry.RV), ("vv", entry.VV),
                           ("cv", entry.CV)):
            if buf[key]:
                session.execute(insert(table), buf[key])
                buf[key] = []

    rownum = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as exc:
            err(rownum + 1, 0, "file", f"not readable as CSV: {exc}")
            break
        rownum += 1
        if not any(c.strip() for c in row):
            continue
        counts["rows"] += 1
        if len(row) != len(header):
            err(rownum, len(row), "file", f"{len(row)} columns, the header has {len(header)}")
            continue
        code = row[0].strip()
        subj = _subject(session, study.id, code, subjects)
        if subj is None:
            err(rownum, 1, header[0], _("no subject {code!r} in this study").format(code=code))
            continue
        subject, site = subj
        if sites is not None and site.code not in sites:
            err(rownum, 1, header[0], f"subject {code} is at a site you may not import for")
            continue
        problem = _entry_problem(session, subject.id, now, allowed)
        if problem:
            err(rownum, 1, header[0], f"no data entry for {code}: {problem}")
            continue
        ev_col = special.get("redcap_event_name")
        if ev_col is not None:
            ev_name = _ARM.sub("", row[ev_col].strip())
        elif len(events) == 1:
            ev_name = next(iter(events))
        else:
            err(rownum, 0, "redcap_event_name", "the study has several events; add a "
                "redcap_event_name column")
            continue
        event = events.get(ev_name)
        if event is None:
            err(rownum, (ev_col or 0) + 1, "redcap_event_name", f"no event {ev_name!r}")
            continue
        rep_col = special.get("redcap_repeat_instance")
        repeat = 1
        if rep_col is not None and row[rep_col].strip():
            try:
                repeat = int(row[rep_col])
                if repeat < 1 or repeat > 10_000 or (repeat > 1 and not event.repeating):
                    raise ValueError
            except ValueError:
                err(rownum, rep_col + 1, "redcap_repeat_instance",
                    "must be 1, or a whole number ≥ 1 for a repeating event")
                continue
        for plan in plans:
            values, col_of = _values(row, plan)
            if not values:
                continue
            if event.form_names and plan.name not in event.form_names:
                first = min(c for cols in plan.columns.values() for c, _x in cols)
                err(rownum, first + 1, plan.name,
                    f"form {plan.name} is not collected at event {event.name}")
                continue
            key = hashlib.blake2b(f"{subject.id}\0{event.name}\0{repeat}\0{plan.form_id}"
                                  .encode(), digest_size=12).digest()
            if key in seen or (event.name, repeat, plan.form_id) in _existing(
                    session, subject.id, existing):
                err(rownum, 1, header[0], f"{code} {event.name}/{repeat} {plan.name} is "
                    "already entered; an import only adds new records")
                continue
            seen.add(key)
            assert_writable(session, study_id=study.id, subject_id=subject.id,  # lock (issue 7)
                            form_id=plan.form_id, at=now, actor=actor.username,
                            client=actor.client)
            try:
                prep = entry.prepare(plan.items, values, {}, existing=False, reasons={},
                                     known_reasons=known_reasons, incomplete=False,
                                     allow_incomplete=settings.allow_incomplete, today=today,
                                     context={}, batch=batch)
            except EntryInvalid as exc:
                for name, message in exc.errors.items():
                    err(rownum, col_of.get(name, 0) + 1, name, message)
                continue
            for name, message in entry.file_refs_refused(session, plan.items, values,
                                                         subject.id).items():
                err(rownum, col_of.get(name, 0) + 1, name, message)
            if errors:
                continue  # keep checking, stop writing: the import will be refused
            rid = new_id()
            buf["fr"].append(dict(id=rid, study_id=study.id, subject_id=subject.id,
                                  event_name=event.name, event_repeat=repeat,
                                  form_id=plan.form_id, form_version_id=plan.version_id,
                                  version=1, status=prep.status, created_at=now,
                                  created_by=actor.username))
            ledger_changes = [Change(n, b, a) for n, b, a, _x in prep.changes]
            e = ledger.append(session, actor=actor.username, client=actor.client,
                              action=Action.ENTRY_IMPORT, entity_type="form_record", entity_id=rid,
                              study=study.code, subject=subject.code, version=1, reason=batch,
                              changes=ledger_changes)
            buf["rv"].append(dict(id=new_id(), record_id=rid, version=1, status=prep.status,
                                  saved_at=now, saved_by=actor.username, client=actor.client,
                                  ledger_seq=e.seq, batch=batch))
            for n, b, a, r in prep.changes:
                buf["vv"].append(dict(id=new_id(), record_id=rid, item_name=n, version=1,
                                      before=b, after=a, reason=r, saved_at=now,
                                      saved_by=actor.username))
                buf["cv"].append(dict(record_id=rid, item_name=n, value=a, version=1))
            counts["records"] += 1
            counts["values"] += len(prep.changes)
        if len(buf["fr"]) >= CHUNK:
            flush()
        if progress is not None and counts["rows"] % CHUNK == 0:
            progress(counts["rows"])
    if errors:
        raise ImportRefused(errors)
    flush()
    if progress is not None:
        progress(counts["rows"])
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ENTRY_IMPORT_BATCH, entity_type="study", entity_id=study.id,
                  study=study.code, reason=batch,
                  changes=[Change("batch", None, batch),
                           Change("sha256", None, digest.hexdigest()),
                           Change("rows", None, counts["rows"]),
                           Change("records", None, counts["records"]),
                           Change("values", None, counts["values"])])
    return {"batch": batch, **counts, "sha256": digest.hexdigest()}


def _plan(session: Session, study_id: str, header: list[str],
          err: Callable[[int, int, str, str], None]) -> tuple[list[_FormPlan], dict[str, int]]:
    special: dict[str, int] = {}
    by_item: dict[str, tuple[_FormPlan, Item]] = {}
    plans: list[_FormPlan] = []
    form_names = set()
    for form in forms.forms_of(session, study_id):
        v = forms.current_version(session, form)
        if v is None:
            continue
        items = forms.items_of(session, v.id)
        plan = _FormPlan(form.name, form.id, v.id, items, {})
        plans.append(plan)
        form_names.add(form.name)
        for i in items:
            by_item.setdefault(i.name, (plan, i))
    for n, col in enumerate(header):
        if n == 0:
            continue
        if col in ("redcap_event_name", "redcap_repeat_instance", "redcap_repeat_instrument",
                   "redcap_data_access_group"):
            special[col] = n
            continue
        if col.endswith("_complete") and col[:-9] in form_names:
            continue
        name, _x, code = col.partition("___")
        found = by_item.get(name)
        if found is None:
            err(1, n + 1, col, _("no such item in the study's forms"))
            continue
        plan, item = found
        if code and not (item.multiple and code in {c["code"] for c in item.choices}):
            err(1, n + 1, col, f"{name} has no checkbox choice {code!r}")
            continue
        if item.field_type in ("calc", "descriptive"):
            continue  # computed by the server / display only: the file's value is ignored
        plan.columns.setdefault(name, []).append((n, code or None))
    return [p for p in plans if p.columns], special


def _values(row: list[str], plan: _FormPlan) -> tuple[dict[str, Any], dict[str, int]]:
    values: dict[str, Any] = {}
    col_of: dict[str, int] = {}
    for name, cols in plan.columns.items():
        col_of[name] = cols[0][0]
        if cols[0][1] is None:
            raw = row[cols[0][0]].strip()
            if raw:
                values[name] = raw
        else:
            chosen = []
            for c, code in cols:
                cell = row[c].strip()
                if cell in ("1", "Checked"):
                    chosen.append(code)
                elif cell not in ("", "0", "Unchecked"):
                    values[name] = [cell]  # the checker names the bad value
                    chosen = []
                    break
            if chosen:
                values[name] = chosen
    return values, col_of


def _subject(session: Session, study_id: str, code: str,
             cache: OrderedDict[str, tuple[Subject, Site] | None]) -> tuple[Subject, Site] | None:
    if code in cache:
        cache.move_to_end(code)
        return cache[code]
    row = session.execute(select(Subject, Site).join(Site,
                                                     sqlmodel.col(Site.id) == Subject.site_id)
                          .where(sqlmodel.col(Subject.code) == code,
                                 sqlmodel.col(Subject.study_id) == study_id)).first()
    found = (row[0], row[1]) if row else None
    if found is not None:
        session.expunge(found[0])
        session.expunge(found[1])
    cache[code] = found
    if len(cache) > 1000:
        cache.popitem(last=False)
    return found


def _existing(session: Session, subject_id: str,
              cache: OrderedDict[str, set[tuple[str, int, str]]]) -> set[tuple[str, int, str]]:
    """Records the subject already has (an import only adds new ones); one query a subject."""
    if subject_id not in cache:
        cache[subject_id] = set(session.execute(select(
            sqlmodel.col(FormRecord.event_name), sqlmodel.col(FormRecord.event_repeat),
            sqlmodel.col(FormRecord.form_id)).where(
            sqlmodel.col(FormRecord.subject_id) == subject_id)).tuples())
        if len(cache) > 1000:
            cache.popitem(last=False)
    return cache[subject_id]


def _entry_problem(session: Session, subject_id: str, now: dt.datetime,
                   cache: OrderedDict[str, str | None]) -> str | None:
    if subject_id in cache:
        return cache[subject_id]
    try:
        guards.assert_entry_allowed(session, subject_id=subject_id, at=now)
        problem = None
    except RuleViolation as exc:
        problem = exc.message
    cache[subject_id] = problem
    if len(cache) > 1000:
        cache.popitem(last=False)
    return problem
