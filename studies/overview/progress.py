"""A study's progress in numbers, for the dashboard's charts (each with the table behind it):
enrolment over time by site, SDV progress and completeness per form, open queries by age.
Counts only — no subject-level values — within the sites the actor may read."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from studies.entry import reading as entry_reading
from studies.entry.models import DataQuery, FormRecord
from studies.kernel.actor import Actor, require
from studies.kernel.roles import Perm
from studies.registry.models import Site
from studies.registry.service import get_study
from studies.subjects.models import Subject

AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0–7", 0, 7), ("8–14", 8, 14), ("15–30", 15, 30), (">30", 31, None))
RECORD_STATES = ("incomplete", "complete", "verified", "query", "locked")


def _as_utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def study_progress(session: Session, *, actor: Actor, study_code: str,
                   at: dt.datetime) -> dict[str, Any]:
    require(actor, Perm.ENTRY_READ, study=study_code)
    study = get_study(session, study_code)
    sites = actor.sites(Perm.ENTRY_READ, study.code)
    rows = session.execute(
        select(col(Site.code), col(Subject.enrolled_at), col(Subject.id))
        .join(Site, col(Site.id) == Subject.site_id)
        .where(col(Subject.study_id) == study.id)
        .order_by(col(Subject.enrolled_at))).all()
    rows = [r for r in rows if sites is None or r[0] in sites]
    visible = {r[2] for r in rows}
    site_codes = sorted({r[0] for r in rows})
    months: dict[str, dict[str, int]] = {}
    for code, when, _sid in rows:
        months.setdefault(_as_utc(when).strftime("%Y-%m"), {c: 0 for c in site_codes})[code] += 1
    cumulative: dict[str, int] = dict.fromkeys(site_codes, 0)
    enrolment = []
    for month in sorted(months):
        for c in site_codes:
            cumulative[c] += months[month][c]
        enrolment.append({"month": month, "new": months[month], "total": dict(cumulative)})

    grid = entry_reading.subject_grid(session, actor=actor, study_code=study_code)
    expected = sum(len(e["forms"]) for e in grid["events"] if not e["repeating"])
    per_form: dict[str, dict[str, int]] = {}
    for s in grid["subjects"]:
        for key, rec in s["records"].items():
            form = key.split("/")[2]
            counts = per_form.setdefault(form, dict.fromkeys(RECORD_STATES, 0))
            counts[entry_reading.record_state(rec)] += 1
    names = list(dict.fromkeys(f for e in grid["events"] for f in e["forms"]))
    forms_ = [{"form": f, **per_form.get(f, dict.fromkeys(RECORD_STATES, 0))} for f in names]

    ages = dict.fromkeys((b for b, _lo, _hi in AGE_BANDS), 0)
    opened = session.execute(
        select(col(DataQuery.opened_at), col(FormRecord.subject_id))
        .join(FormRecord, col(FormRecord.id) == DataQuery.record_id)
        .where(col(DataQuery.study_id) == study.id, col(DataQuery.status) != "closed")).all()
    for when, subject_id in opened:
        if subject_id not in visible:
            continue
        days = (at - _as_utc(when)).days
        for band, lo, hi in AGE_BANDS:
            if days >= lo and (hi is None or days <= hi):
                ages[band] += 1
                break
    return {"study": study.code, "sites": site_codes, "subjects": len(rows),
            "enrolment": enrolment, "forms": forms_,
            "expected_forms_per_subject": expected,
            "open_queries_by_age": [{"band": b, "count": ages[b]} for b, _lo, _hi in AGE_BANDS]}
