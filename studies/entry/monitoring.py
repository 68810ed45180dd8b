"""Monitoring (§11.3.2 f, §11.3.4.7 e): source-data verification and queries.

SDV marks are append-only events per field (``verified`` at a value version, or ``cleared``
when a later save changed the field). A field's state is its newest mark; a change to a
verified field clears it in the same transaction as the save and shows in the worklist as
"requires verification: changed after SDV". Queries go open → answered → closed (and may be
re-opened); every message and state change is a ledger entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.base import execute_core
from audit_trail.service import Change, Ledger
from studies.entry import service as entry
from studies.entry.models import (
    DataQuery,
    FormRecord,
    QueryMessage,
    SdvMark,
)
from studies.entry.schemas import (
    MAX_QUERY_TEXT,
    QueryAnswerIn,
    QueryNoteIn,
    QueryOpenIn,
    SaveIn,
    SdvIn,
)
from studies.forms import service as forms
from studies.forms.models import Form, Item
from studies.guards import assert_writable
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.ids import new_id
from studies.kernel.roles import Perm
from studies.registry.models import Site
from studies.subjects.models import Subject

CLAUSE_SDV = "§11.3.2 f"
CLAUSE_QUERY = "§11.3.4.7 e"
SM = SdvMark.__table__  # type: ignore[attr-defined]
DQ = DataQuery.__table__  # type: ignore[attr-defined]


# ---- SDV ------------------------------------------------------------------------------------

def needs_sdv(settings: entry.SettingsView, subject_id: str, form_name: str,
              items: list[Item]) -> set[str]:
    """The items of a form that need SDV for this subject under the study's setting: all,
    key items (``form.item`` or ``item``), a deterministic sample of subjects, or none."""
    names = {i.name for i in items if i.field_type not in ("descriptive", "calc")}
    mode = settings.sdv_mode
    if mode == "none":
        return set()
    if mode == "key":
        keys = set(settings.sdv_key_items or [])
        return {n for n in names if n in keys or f"{form_name}.{n}" in keys}
    if mode == "sample":
        h = int.from_bytes(hashlib.sha256(subject_id.encode()).digest()[:4], "big") % 100
        return names if h < settings.sdv_sample_percent else set()
    return names


_MARKS = select(SM).where(SM.c.record_id == bindparam("record_id")).order_by(
    SM.c.at, SM.c.value_version)


def sdv_state(session: Session, record_id: str) -> dict[str, Any]:
    """Each field's newest SDV mark, as read-only rows with ``SdvMark``'s attribute names."""
    return {m.item_name: m for m in execute_core(session, _MARKS, {"record_id": record_id})}


def clear_changed(session: Session, *, record_id: str, changed: list[str], version: int,
                  by: str, now: dt.datetime) -> list[str]:
    """Clear the verification of each changed field that was verified (append a ``cleared``
    mark); the caller puts the clearing into the save's ledger entry."""
    if not changed:
        return []
    state = sdv_state(session, record_id)
    cleared = sorted(n for n in changed if n in state and state[n].kind == "verified")
    if cleared:
        session.execute(insert(SM), [dict(id=new_id(), record_id=record_id, item_name=n,
                                          kind="cleared", value_version=version, at=now, by=by)
                                     for n in cleared])
    return cleared


def _records_of_visit(session: Session, actor: Actor, perm: Perm, study_code: str,
                      subject_code: str, event_name: str, repeat: int,
                      form_name: str | None) -> list[tuple[entry.Target, FormRecord]]:
    require(actor, perm, study=study_code)
    study = entry.study_named(session, study_code)
    if form_name:
        t = entry.resolve(session, actor=actor, perm=perm, study_code=study_code,
                          subject_code=subject_code, event_name=event_name,
                          form_name=form_name, repeat=repeat)
        rec = entry.find_record(session, t)
        if rec is None:
            raise NotFound(_("nothing has been entered on this form yet"),
                           field="form")
        return [(t, rec)]
    subject, site = entry.subject_of(session, study, subject_code)
    require(actor, perm, study=study_code, site=site.code)
    event = entry.event_of(session, study, event_name)
    out = []
    for rec, form in session.execute(select(FormRecord, Form).join(
            Form, col(Form.id) == FormRecord.form_id).where(
            col(FormRecord.subject_id) == subject.id, col(FormRecord.event_name) == event.name,
            col(FormRecord.event_repeat) == repeat).order_by(col(Form.name))).all():
        out.append((entry.Target(study, subject, site, event, repeat, form), rec))
    if not out:
        raise NotFound(_("nothing has been entered at this visit yet"),
                       field="event")
    return out


def verify(session: Session, ledger: Ledger, *, actor: Actor, study_code: str, data: SdvIn,
           now: dt.datetime | None = None) -> dict[str, Any]:
    """Mark fields as source-data-verified: named fields of one form, every field needing SDV
    on one form, or on every form of the visit. One ledger entry per form record; fields
    already verified at their current value are left as they are."""
    now = now or dt.datetime.now(dt.UTC)
    targets = _records_of_visit(session, actor, Perm.ENTRY_VERIFY, study_code, data.subject,
                                data.event, data.repeat, data.form)
    if data.items is not None and data.form is None:
        raise InvalidInput(_("name the form whose fields you verify"), field="form")
    settings = entry.get_settings(session, targets[0][0].study.id)
    done: dict[str, list[str]] = {}
    for t, rec in targets:
        assert_writable(session, record_id=rec.id, at=now, actor=actor.username,
                        client=actor.client, kind="sdv")
        items = forms.items_of(session, rec.form_version_id)
        names = {i.name for i in items if i.field_type != "descriptive"}
        if data.items is not None:
            bad = [n for n in data.items if n not in names]
            if bad:
                raise InvalidInput(_("no field {value!r} on form {name}").format(
                                       value=bad[0], name=t.form.name),
                                   field="items")
            wanted = set(data.items)
        else:
            wanted = needs_sdv(settings, t.subject.id, t.form.name, items)
        versions = dict(session.execute(select(entry.CV.c.item_name, entry.CV.c.version).where(
            entry.CV.c.record_id == rec.id)).tuples().all())
        state = sdv_state(session, rec.id)
        marks = []
        for n in sorted(wanted):
            if n not in versions:
                continue  # never entered: nothing to verify
            m = state.get(n)
            if m is not None and m.kind == "verified" and m.value_version == versions[n]:
                continue
            marks.append(dict(id=new_id(), record_id=rec.id, item_name=n, kind="verified",
                              value_version=versions[n], at=now, by=actor.username))
        if not marks:
            continue
        session.execute(insert(SM), marks)
        ledger.append(session, actor=actor.username, client=actor.client, action=Action.SDV_VERIFY,
                      entity_type="form_record", entity_id=rec.id, study=t.study.code,
                      subject=t.subject.code, version=rec.version,
                      changes=[Change(f"sdv:{m['item_name']}",
                                      state[m["item_name"]].kind if m["item_name"] in state
                                      else None, "verified") for m in marks])
        done[t.form.name] = [m["item_name"] for m in marks]
    return {"verified": done, "count": sum(len(v) for v in done.values())}


def record_sdv_summary(session: Session, settings: entry.SettingsView, rec: FormRecord,
                       form_name: str, subject_id: str) -> dict[str, list[str]]:
    items = forms.items_of(session, rec.form_version_id)
    need = needs_sdv(settings, subject_id, form_name, items)
    entered = set(entry.current_values(session, rec.id))
    state = sdv_state(session, rec.id)
    changed = sorted(n for n, m in state.items() if m.kind == "cleared")
    pending = sorted(n for n in need & entered
                     if n not in state or state[n].kind != "verified")
    return {"pending": pending, "changed_after_sdv": changed}


# ---- queries --------------------------------------------------------------------------------

def _text(text: str) -> str:
    t = (text or "").strip()
    if not t:
        raise InvalidInput(_("the text is empty"), field="text")
    if len(t) > MAX_QUERY_TEXT:
        raise InvalidInput(_("the text is longer than {MAX_QUERY_TEXT} characters").format(
                               MAX_QUERY_TEXT=MAX_QUERY_TEXT),
                           field="text")
    return t


def _message(session: Session, q: DataQuery, kind: str, text: str, by: str, now: dt.datetime,
             record_version: int | None = None) -> None:
    session.add(QueryMessage(query_id=q.id, kind=kind, text=text, at=now, by=by,
                             record_version=record_version))


def open_query(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
               data: QueryOpenIn, now: dt.datetime | None = None) -> DataQuery:
    """A monitor raises a query on a field of an entered form."""
    now = now or dt.datetime.now(dt.UTC)
    t = entry.resolve(session, actor=actor, perm=Perm.ENTRY_VERIFY, study_code=study_code,
                      subject_code=data.subject, event_name=data.event, form_name=data.form,
                      repeat=data.repeat)
    rec = entry.find_record(session, t)
    if rec is None:
        raise NotFound(_("nothing has been entered on this form yet"), field="form")
    assert_writable(session, record_id=rec.id, field=data.item, at=now, actor=actor.username,
                    client=actor.client, kind="query")
    if data.item not in {i.name for i in forms.items_of(session, rec.form_version_id)}:
        raise InvalidInput(_("no field {item!r} on this form").format(item=data.item),
                           field="item")
    text = _text(data.text)
    q = DataQuery(study_id=t.study.id, record_id=rec.id, item_name=data.item, status="open",
                  opened_at=now, opened_by=actor.username)
    session.add(q)
    session.flush()
    _message(session, q, "open", text, actor.username, now)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.QUERY_OPEN,
                  entity_type="data_query", entity_id=q.id, study=t.study.code,
                  subject=t.subject.code, version=rec.version,
                  changes=[Change("item", None, f"{t.form.name}.{data.item}"),
                           Change("status", None, "open"), Change("text", None, text)])
    return q


def _query(session: Session, actor: Actor, perm: Perm, study_code: str,
           query_id: str) -> tuple[DataQuery, FormRecord, Subject, Site, Form]:
    require(actor, perm, study=study_code)
    study = entry.study_named(session, study_code)
    row = session.execute(select(DataQuery, FormRecord, Subject, Site, Form)
                          .join(FormRecord, col(FormRecord.id) == DataQuery.record_id)
                          .join(Subject, col(Subject.id) == FormRecord.subject_id)
                          .join(Site, col(Site.id) == Subject.site_id)
                          .join(Form, col(Form.id) == FormRecord.form_id)
                          .where(col(DataQuery.id) == query_id)).first()
    if row is None or row[0].study_id != study.id:
        raise NotFound(_("no such query in this study"), field="query")
    require(actor, perm, study=study_code, site=row[3].code)
    return row[0], row[1], row[2], row[3], row[4]


def _transition(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                q: DataQuery, subject: Subject, to: str, kind: str, text: str,
                now: dt.datetime, record_version: int | None = None) -> None:
    before = q.status
    session.execute(update(DQ).where(DQ.c.id == q.id).values(status=to))
    session.expire(q)
    _message(session, q, kind, text, actor.username, now, record_version)
    session.flush()
    changes = [Change("status", before, to), Change("text", None, text)]
    if record_version is not None:
        changes.append(Change("record_version", None, record_version))
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action(f"query.{kind}"),
                  entity_type="data_query", entity_id=q.id, study=study_code,
                  subject=subject.code, changes=changes)


def answer_query(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                 query_id: str, data: QueryAnswerIn,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The investigator answers; with ``change_value`` the field is corrected in the same
    transaction (a new record version; the reason defaults to "query response")."""
    now = now or dt.datetime.now(dt.UTC)
    q, rec, subject, _site, form = _query(session, actor, Perm.QUERY_ANSWER, study_code,
                                          query_id)
    assert_writable(session, record_id=rec.id, field=q.item_name, at=now, actor=actor.username,
                    client=actor.client, kind="query")
    if q.status == "closed":
        raise Conflict(_("the query is closed"), field="query")
    text = _text(data.text)
    saved = None
    if data.change_value:
        values = {k: v for k, v in entry.current_values(session, rec.id).items()
                  if v is not None}
        values[q.item_name] = data.value
        event = rec.event_name
        saved = entry.save_form(
            session, ledger, actor=actor, study_code=study_code, subject_code=subject.code,
            event_name=event, form_name=form.name,
            data=SaveIn(base_version=data.base_version or rec.version, values=values,
                              reasons={q.item_name: data.reason or "query_response"},
                              repeat=rec.event_repeat,
                              incomplete=rec.status == "incomplete"),
            now=now)
    _transition(session, ledger, actor=actor, study_code=study_code, q=q, subject=subject,
                to="answered", kind="answer", text=text, now=now,
                record_version=saved.version if saved and saved.saved else None)
    return {"query": query_id, "status": "answered",
            "save": saved.public() if saved else None}


def close_query(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                query_id: str, data: QueryNoteIn, reopen: bool = False,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """The monitor closes a query (resolved) or re-opens it (not resolved)."""
    now = now or dt.datetime.now(dt.UTC)
    q, _rec, subject, _site, _form = _query(session, actor, Perm.ENTRY_VERIFY, study_code,
                                            query_id)
    assert_writable(session, record_id=_rec.id, field=q.item_name, at=now, actor=actor.username,
                    client=actor.client, kind="query")
    if reopen and q.status == "open":
        raise Conflict(_("the query is already open"), field="query")
    if not reopen and q.status == "closed":
        raise Conflict(_("the query is already closed"), field="query")
    to = "open" if reopen else "closed"
    _transition(session, ledger, actor=actor, study_code=study_code, q=q, subject=subject,
                to=to, kind="reopen" if reopen else "close", text=_text(data.text), now=now)
    return {"query": query_id, "status": to}


def _thread(session: Session, query_id: str) -> list[dict[str, Any]]:
    return [{"kind": m.kind, "text": m.text, "by": m.by, "at": m.at.isoformat(),
             "record_version": m.record_version}
            for m in session.execute(select(QueryMessage)
                                     .where(col(QueryMessage.query_id) == query_id)
                                     .order_by(col(QueryMessage.at),
                                               col(QueryMessage.id))).scalars()]


_QUERIES = select(DQ).where(DQ.c.record_id == bindparam("record_id")).order_by(DQ.c.opened_at)


def queries_of_record(session: Session, record_id: str) -> list[dict[str, Any]]:
    return [{"id": q.id, "item": q.item_name, "status": q.status, "opened_by": q.opened_by,
             "opened_at": q.opened_at.isoformat(), "thread": _thread(session, q.id)}
            for q in execute_core(session, _QUERIES, {"record_id": record_id})]


def get_query(session: Session, *, actor: Actor, study_code: str,
              query_id: str) -> dict[str, Any]:
    q, rec, subject, site, form = _query(session, actor, Perm.ENTRY_READ, study_code, query_id)
    return {"id": q.id, "item": q.item_name, "status": q.status, "subject": subject.code,
            "site": site.code, "event": rec.event_name, "repeat": rec.event_repeat,
            "form": form.name, "opened_by": q.opened_by, "opened_at": q.opened_at.isoformat(),
            "thread": _thread(session, q.id)}


def list_queries(session: Session, *, actor: Actor, study_code: str,
                 status: str | None = None, now: dt.datetime | None = None
                 ) -> list[dict[str, Any]]:
    """Queries of a study, oldest first, with their age in days."""
    require(actor, Perm.ENTRY_READ, study=study_code)
    study = entry.study_named(session, study_code)
    now = now or dt.datetime.now(dt.UTC)
    sites = actor.sites(Perm.ENTRY_READ, study.code)
    q = (select(DataQuery, FormRecord, col(Subject.code), col(Site.code), col(Form.name))
         .join(FormRecord, col(FormRecord.id) == DataQuery.record_id)
         .join(Subject, col(Subject.id) == FormRecord.subject_id)
         .join(Site, col(Site.id) == Subject.site_id).join(Form, col(Form.id) == FormRecord.form_id)
         .where(col(DataQuery.study_id) == study.id).order_by(col(DataQuery.opened_at)))
    if status:
        q = q.where(col(DataQuery.status) == status)
    out = []
    for dq, rec, subj, site, fname in session.execute(q).all():
        if sites is not None and site not in sites:
            continue
        out.append({"id": dq.id, "subject": subj, "site": site, "event": rec.event_name,
                    "repeat": rec.event_repeat, "form": fname, "item": dq.item_name,
                    "status": dq.status, "opened_by": dq.opened_by,
                    "opened_at": dq.opened_at.isoformat(),
                    "age_days": (now - dq.opened_at).days})
    return out


def worklist(session: Session, *, actor: Actor, study_code: str,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """The monitor's list: forms not yet verified, open queries by age (oldest first), and
    fields that require verification because they changed after SDV."""
    require(actor, Perm.ENTRY_VERIFY, study=study_code)
    study = entry.study_named(session, study_code)
    settings = entry.get_settings(session, study.id)
    sites = actor.sites(Perm.ENTRY_VERIFY, study.code)
    unverified, changed = [], []
    for rec, subj, site, fname in session.execute(
            select(FormRecord, Subject, col(Site.code), col(Form.name))
            .join(Subject, col(Subject.id) == FormRecord.subject_id)
            .join(Site, col(Site.id) == Subject.site_id)
            .join(Form, col(Form.id) == FormRecord.form_id)
            .where(col(FormRecord.study_id) == study.id)
            .order_by(col(Subject.code), col(FormRecord.event_name), col(FormRecord.event_repeat),
                      col(Form.name))
    ).all():
        if sites is not None and site not in sites:
            continue
        s = record_sdv_summary(session, settings, rec, fname, subj.id)
        where = {"subject": subj.code, "site": site, "event": rec.event_name,
                 "repeat": rec.event_repeat, "form": fname, "version": rec.version,
                 "status": rec.status}
        if s["pending"]:
            unverified.append({**where, "fields": s["pending"]})
        for n in s["changed_after_sdv"]:
            changed.append({**where, "item": n,
                            "note": _("requires verification: changed after SDV")})
    open_q = [q for q in list_queries(session, actor=actor, study_code=study_code, now=now)
              if q["status"] in ("open", "answered")]
    open_q.sort(key=lambda q: q["opened_at"])
    return {"unverified_forms": unverified, "open_queries": open_q,
            "changed_after_sdv": changed}
