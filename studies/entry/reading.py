"""Reading entered data (SPEC §4): a form as the investigator sees it, a subject's timeline, one
field's history (who, when, why, before, after), the study's entry grid, and the proof that the
materialised current values equal the value versions and the ledger (``edc entry verify``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.models import LedgerEntry
from studies import guards
from studies.entry import level5
from studies.entry.models import (
    DataQuery,
    FormRecord,
    RecordVersion,
    SdvMark,
    ValueVersion,
)
from studies.entry.service import (
    CV,
    FR,
    RV,
    VV,
    Target,
    current_values,
    entry_version,
    find_record,
    get_settings,
    resolve,
    settings_public,
    study_named,
)
from studies.forms import service as forms
from studies.kernel.actor import Actor, require
from studies.kernel.errors import NotFound
from studies.kernel.i18n import _
from studies.kernel.reads import ReadNote
from studies.kernel.roles import Perm
from studies.registry.models import Site
from studies.subjects.models import Subject


def form_view(session: Session, *, actor: Actor, study_code: str, subject_code: str,
              event_name: str, form_name: str, repeat: int = 1,
              note: ReadNote | None = None) -> dict[str, Any]:
    """What a form page or GET shows: metadata of the pinned version, current values (level-5
    ones masked unless the actor may see them, ``studies.entry.level5``), record version and
    status, SDV state and queries per field."""
    from studies.entry import monitoring

    t = resolve(session, actor=actor, perm=Perm.ENTRY_READ, study_code=study_code,
                subject_code=subject_code, event_name=event_name, form_name=form_name,
                repeat=repeat)
    record = find_record(session, t)
    design = forms.design(session, record.form_version_id if record else
                          entry_version(session, t.form).id)
    fv, items = design.version, list(design.items)
    settings = get_settings(session, t.study.id)
    values = level5.access(session, actor=actor, study=t.study, settings=settings).show(
        current_values(session, record.id) if record else {}, level5.level5_items(items), note)
    sdv = monitoring.sdv_state(session, record.id) if record else {}
    need = monitoring.needs_sdv(settings, t.subject.id, t.form.name, items)
    return {"study": t.study.code, "subject": t.subject.code, "site": t.site.code,
            "event": t.event.name, "event_label_zh": t.event.label_zh,
            "event_label_en": t.event.label_en, "repeat": t.repeat, "form": t.form.name,
            "form_version": fv.number, "form_label_zh": fv.label_zh,
            "form_label_en": fv.label_en, "record_id": record.id if record else None,
            "version": record.version if record else 0,
            "status": record.status if record else "new", "values": values,
            "groups": design.public_groups,
            "sdv": {k: {"state": v.kind, "value_version": v.value_version, "by": v.by,
                        "at": v.at.isoformat()} for k, v in sdv.items()},
            "sdv_required": sorted(need),
            "queries": monitoring.queries_of_record(session, record.id) if record else [],
            "locked": guards.is_locked(session, study_id=t.study.id, site_id=t.site.id,
                                       subject_id=t.subject.id, form_id=t.form.id),
            "settings": settings_public(settings)}


def _record_for(session: Session, actor: Actor, study_code: str, subject_code: str,
                event_name: str, form_name: str, repeat: int) -> tuple[Target, FormRecord]:
    t = resolve(session, actor=actor, perm=Perm.ENTRY_READ, study_code=study_code,
                subject_code=subject_code, event_name=event_name, form_name=form_name,
                repeat=repeat)
    record = find_record(session, t)
    if record is None:
        raise NotFound(_("nothing has been entered on this form yet"), field="form")
    return t, record


def timeline(session: Session, *, actor: Actor, study_code: str, subject_code: str,
             event_name: str, form_name: str, repeat: int = 1,
             note: ReadNote | None = None) -> list[dict[str, Any]]:
    """Every version of the form record, newest first, with its changes, SDV and queries
    (level-5 values masked as ``studies.entry.level5`` says)."""
    t, record = _record_for(session, actor, study_code, subject_code, event_name, form_name,
                            repeat)
    seen = level5.access(session, actor=actor, study=t.study)
    five = level5.level5_items(forms.items_of(session, record.form_version_id))
    vals: dict[int, list[dict[str, Any]]] = {}
    for v in session.execute(select(ValueVersion).where(col(ValueVersion.record_id) == record.id)
                             .order_by(col(ValueVersion.item_name))).scalars():
        vals.setdefault(v.version, []).append(
            {"field": v.item_name, "before": seen.value(v.item_name, v.before, five, note),
             "after": seen.value(v.item_name, v.after, five, note), "reason": v.reason})
    out = [{"kind": "save", "version": r.version, "status": r.status, "by": r.saved_by,
            "at": r.saved_at.isoformat(), "ledger_seq": r.ledger_seq, "batch": r.batch,
            "changes": vals.get(r.version, [])}
           for r in session.execute(select(RecordVersion).where(
               col(RecordVersion.record_id) == record.id)).scalars()]
    for m in session.execute(select(SdvMark).where(col(SdvMark.record_id) == record.id)).scalars():
        out.append({"kind": f"sdv.{m.kind}", "field": m.item_name, "version": m.value_version,
                    "by": m.by, "at": m.at.isoformat()})
    from studies.entry import monitoring

    for q in monitoring.queries_of_record(session, record.id):
        for msg in q["thread"]:
            out.append({"kind": f"query.{msg['kind']}", "field": q["item"], "text": msg["text"],
                        "by": msg["by"], "at": msg["at"], "query": q["id"]})
    out.sort(key=lambda e: (e["at"], e.get("version") or 0), reverse=True)
    return out


def field_history(session: Session, *, actor: Actor, study_code: str, subject_code: str,
                  event_name: str, form_name: str, item: str,
                  repeat: int = 1, note: ReadNote | None = None) -> list[dict[str, Any]]:
    """Every version of one field: who, when, why, before, after (oldest first; a level-5
    field's values masked as ``studies.entry.level5`` says)."""
    t, record = _record_for(session, actor, study_code, subject_code, event_name, form_name,
                            repeat)
    items = forms.items_of(session, record.form_version_id)
    if item not in {i.name for i in items}:
        raise NotFound(_("no field {item!r} on this form").format(item=item), field="item")
    seen = level5.access(session, actor=actor, study=t.study)
    five = level5.level5_items(items) & {item}
    rows = session.execute(select(ValueVersion, col(RecordVersion.client)).join(
        RecordVersion, (col(RecordVersion.record_id) == ValueVersion.record_id)
        & (col(RecordVersion.version) == ValueVersion.version)).where(
        col(ValueVersion.record_id) == record.id, col(ValueVersion.item_name) == item)
        .order_by(col(ValueVersion.version))).all()
    return [{"version": v.version, "by": v.saved_by, "at": v.saved_at.isoformat(),
             "reason": v.reason, "before": seen.value(item, v.before, five, note),
             "after": seen.value(item, v.after, five, note), "client": client}
            for v, client in rows]


def subject_grid(session: Session, *, actor: Actor, study_code: str) -> dict[str, Any]:
    """Subjects × events × forms with each record's version and status (entry overview), and
    what a status icon needs: ``verified`` (every field that needs SDV verified),
    ``open_queries`` (not closed) and ``locked`` (a lock covers it, no unlock opens it)."""
    from studies.entry import monitoring

    require(actor, Perm.ENTRY_READ, study=study_code)
    study = study_named(session, study_code)
    sites = actor.sites(Perm.ENTRY_READ, study.code)
    events = forms.events_of(session, study.id)
    form_names = {f.id: f.name for f in forms.forms_of(session, study.id)}
    q = (select(col(Subject.code), col(Subject.id), col(Site.code), col(Site.id))
         .join(Site, col(Site.id) == Subject.site_id)
         .where(col(Subject.study_id) == study.id).order_by(col(Subject.code)))
    subjects_ = [(c, i, s, sid) for c, i, s, sid in session.execute(q)
                 if sites is None or s in sites]
    site_of = {i: sid for _c, i, _s, sid in subjects_}
    settings = get_settings(session, study.id)
    open_q: dict[str, int] = {}
    for rid in session.execute(select(col(DataQuery.record_id)).where(
            col(DataQuery.study_id) == study.id, col(DataQuery.status) != "closed")).scalars():
        open_q[rid] = open_q.get(rid, 0) + 1
    recs: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for r in session.execute(select(FormRecord).where(
            col(FormRecord.study_id) == study.id)).scalars():
        if r.subject_id not in site_of:
            continue
        name = form_names.get(r.form_id, "?")
        sdv = monitoring.record_sdv_summary(session, settings, r, name, r.subject_id)
        recs[(r.subject_id, r.event_name, r.event_repeat, name)] = {
            "version": r.version, "status": r.status,
            "verified": not sdv["pending"] and not sdv["changed_after_sdv"],
            "open_queries": open_q.get(r.id, 0),
            "locked": guards.is_locked(session, study_id=study.id, site_id=site_of[r.subject_id],
                                       subject_id=r.subject_id, form_id=r.form_id)}
    return {"study": study.code,
            "events": [{"name": e.name, "label_zh": e.label_zh, "label_en": e.label_en,
                        "repeating": e.repeating, "forms": list(e.form_names)} for e in events],
            "subjects": [{"code": c, "site": s, "records": {
                f"{ev}/{rep}/{fn}": v for (sid, ev, rep, fn), v in recs.items() if sid == i}}
                for c, i, s, _sid in subjects_]}


def record_state(rec: dict[str, Any] | None) -> str:
    """A grid record's one state, most urgent first: locked, open query, verified (complete
    and every field needing SDV verified), complete (saved, not verified), incomplete; "new"
    when nothing is saved. A saved form never reads as verified."""
    if rec is None:
        return "new"
    if rec.get("locked"):
        return "locked"
    if rec.get("open_queries"):
        return "query"
    if rec.get("verified") and rec["status"] == "complete":
        return "verified"
    return "complete" if rec["status"] == "complete" else "incomplete"


def verify_current(session: Session, *, study_code: str | None = None) -> list[str]:
    """Replay every value version (and, independently, every ledger entry of form records)
    and compare with ``item_value_current`` and each record's version. Returns the
    mismatches (empty: the current table says exactly what the versions and ledger say)."""
    problems: list[str] = []
    q = select(FR.c.id, FR.c.version)
    if study_code:
        study = study_named(session, study_code)
        q = q.where(FR.c.study_id == study.id)
    records = dict(session.execute(q).tuples().all())
    from_versions: dict[tuple[str, str], tuple[int, Any]] = {}
    for rid, name, version, after in session.execute(
            select(VV.c.record_id, VV.c.item_name, VV.c.version, VV.c.after)
            .order_by(VV.c.record_id, VV.c.version)):
        if rid in records:
            from_versions[(rid, name)] = (version, after)
    current = {(rid, name): (version, value) for rid, name, version, value in session.execute(
        select(CV.c.record_id, CV.c.item_name, CV.c.version, CV.c.value)) if rid in records}
    for key in sorted(set(from_versions) | set(current)):
        if from_versions.get(key) != current.get(key):
            problems.append(f"record {key[0]} item {key[1]}: versions say "
                            f"{from_versions.get(key)!r}, current table says "
                            f"{current.get(key)!r}")
    newest = dict(session.execute(select(RV.c.record_id, func.max(RV.c.version))
                                  .group_by(RV.c.record_id)).tuples().all())
    for rid, version in records.items():
        if newest.get(rid) != version:
            problems.append(f"record {rid}: version {version} but newest saved "
                            f"{newest.get(rid)}")
    from_ledger: dict[tuple[str, str], Any] = {}
    import json

    for entity_id, changes in session.execute(
            select(col(LedgerEntry.entity_id), col(LedgerEntry.changes)).where(
                col(LedgerEntry.entity_type) == "form_record",
                col(LedgerEntry.action).in_(("entry.create", "entry.update", "entry.import")))
            .order_by(col(LedgerEntry.seq))):
        if entity_id not in records:
            continue
        for c in json.loads(changes or "[]"):
            if not c["field"].startswith("sdv:"):
                from_ledger[(entity_id, c["field"])] = c["after"]
    for key in sorted(set(from_ledger) | set(current)):
        cur = current.get(key)
        if key not in from_ledger or cur is None or from_ledger[key] != cur[1]:
            problems.append(f"record {key[0]} item {key[1]}: ledger says "
                            f"{from_ledger.get(key)!r}, current table says {cur!r}")
    return problems
