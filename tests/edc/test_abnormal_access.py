"""Abnormal access (§11.1.2.4, §11.3.4.9 d): access from outside the hospital network, out of
working hours, bulk reads and repeated refusals are each flagged once per episode, audited,
sent to the data security officer's inbox and shown on the audit page; the officer
acknowledges each with a note. Idle pages blank (the JavaScript-free fallback is the idle
session timeout)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from conftest import app_with
from factories import make_entry_study, make_user
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.settings import Settings
from edc.state import AppState
from studies.kernel.roles import Role
from studies.oversight.models import AccessFlag

STUDY = "ENT-2026-01"
SUBJECTS = ("S01-ENT01", "S01-ENT02", "S01-ENT03")
INSIDE = ("10.1.2.3", 50000)
OUTSIDE = ("203.0.113.9", 50000)


@pytest.fixture
def people(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger, subjects=SUBJECTS)
    make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)


def always_working() -> dict[str, object]:
    return {"working_hours": "00:00-23:59", "working_days": "1,2,3,4,5,6,7"}


@pytest.fixture
def client_of(settings: Settings, engine: object, keys: keyring.Keyring, ledger: Ledger,
              session: Session, people: None) -> Iterator[object]:
    opened: list[object] = []

    def make(client: tuple[str, int], **overrides: object) -> tuple[TestClient, AppState]:
        cm = app_with(settings, engine, keys, ledger, session,  # type: ignore[arg-type]
                      client=client, hospital_networks="10.0.0.0/8",
                      **{**always_working(), **overrides})
        opened.append(cm)
        return cm.__enter__()

    yield make
    for cm in reversed(opened):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]


def flags(session: Session, rule: str | None = None) -> list[AccessFlag]:
    q = select(AccessFlag).order_by(AccessFlag.created_at)
    if rule:
        q = q.where(AccessFlag.rule == rule)
    return list(session.execute(q).scalars())


def test_access_from_outside_is_flagged_once_acknowledged_with_a_note(
        client_of: object, session: Session, ledger: Ledger) -> None:
    c, state = client_of(OUTSIDE)  # type: ignore[operator]
    login(c, "mon")
    for _ in range(2):
        assert c.get(f"/studies/{STUDY}/subjects/{SUBJECTS[0]}").status_code == 200
        state.reads.flush(session, ledger)
    found = flags(session)
    assert [(f.rule, f.username, f.client, f.study) for f in found] == \
        [("outside_network", "mon", "203.0.113.9", STUDY)]  # once for the episode
    raised = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "access_flag.raise")).scalars().all()
    assert len(raised) == 1 and raised[0].entity_id == found[0].id

    officer, _ = client_of(INSIDE)  # type: ignore[operator]
    login(officer, "dso")
    inbox = officer.get("/api/v1/inbox").json()
    assert any(m["kind"] == "access_flag.outside_network" and "mon" in m["text"]
               and m["link"] == "/audit/flags" for m in inbox)
    listed = soup(officer.get("/audit/flags").text).select("table.audit tbody tr")
    assert len(listed) == 1 and "203.0.113.9" in listed[0].text
    assert 'Access from outside the hospital network' in listed[0].text

    page = officer.get(f"/audit/flags/{found[0].id}")
    token = soup(page.text).find("input", {"name": "csrf_token"})["value"]
    r = officer.post(f"/audit/flags/{found[0].id}/acknowledge",
                     data={"note": "  ", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422
    assert soup(r.text).find(id="error-note") is not None
    session.refresh(found[0])
    assert found[0].acknowledged_at is None
    r = officer.post(f"/audit/flags/{found[0].id}/acknowledge",
                     data={"note": "monitor working from home; told to use VPN",
                           "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    session.refresh(found[0])
    assert found[0].acknowledged_by == "dso" and "VPN" in (found[0].note or "")
    ack = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "access_flag.acknowledge")).scalar_one()
    assert ack.actor == "dso" and ack.entity_id == found[0].id
    # acknowledged: the episode is over, the next outside access is a new flag
    assert c.get(f"/studies/{STUDY}/subjects/{SUBJECTS[0]}").status_code == 200
    state.reads.flush(session, ledger)
    assert len(flags(session, "outside_network")) == 2


def test_the_monitor_may_not_see_or_acknowledge_flags(client_of: object) -> None:
    c, _ = client_of(INSIDE)  # type: ignore[operator]
    login(c, "mon")
    assert c.get("/audit/flags").status_code == 403


def test_access_inside_the_network_in_working_hours_is_not_flagged(
        client_of: object, session: Session, ledger: Ledger) -> None:
    c, state = client_of(INSIDE)  # type: ignore[operator]
    login(c, "mon")
    assert c.get(f"/studies/{STUDY}/subjects/{SUBJECTS[0]}").status_code == 200
    state.reads.flush(session, ledger)
    assert flags(session) == []


def test_access_out_of_working_hours_is_flagged(client_of: object, session: Session,
                                                ledger: Ledger) -> None:
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).isoweekday()
    other_days = ",".join(str(d) for d in range(1, 8) if d != today)
    c, state = client_of(INSIDE, working_days=other_days)  # type: ignore[operator]
    login(c, "mon")
    assert c.get(f"/studies/{STUDY}/entry").status_code == 200
    state.reads.flush(session, ledger)
    assert [f.rule for f in flags(session)] == ["out_of_hours"]
    assert "(Asia/Shanghai)" in flags(session)[0].detail


def test_bulk_reads_are_flagged(client_of: object, session: Session, ledger: Ledger) -> None:
    c, state = client_of(INSIDE, bulk_read_subjects=3)  # type: ignore[operator]
    login(c, "mon")
    for code in SUBJECTS[:2]:
        assert c.get(f"/studies/{STUDY}/subjects/{code}").status_code == 200
    state.reads.flush(session, ledger)
    assert flags(session) == []  # two subjects: under the threshold
    assert c.get(f"/studies/{STUDY}/subjects/{SUBJECTS[2]}").status_code == 200
    state.reads.flush(session, ledger)
    found = flags(session)
    assert [f.rule for f in found] == ["bulk_reads"]
    assert found[0].detail.startswith("3 subjects read within 10 min")


def test_repeated_refusals_are_flagged(client_of: object, session: Session,
                                       ledger: Ledger) -> None:
    c, state = client_of(INSIDE, refusal_flag_count=3)  # type: ignore[operator]
    login(c, "mon")
    for n in range(3):
        assert c.get("/audit/entries").status_code == 403
        state.reads.flush(session, ledger)
        assert len(flags(session)) == (1 if n == 2 else 0)
    found = flags(session)[0]
    assert found.rule == "repeated_refusals" and found.username == "mon"
    assert found.detail.startswith("3 refusals within 10 min")


def test_pages_blank_when_idle_and_the_session_times_out_without_javascript(
        client_of: object) -> None:
    c, state = client_of(INSIDE, idle_blank_seconds=120)  # type: ignore[operator]
    login(c, "mon")
    script = soup(c.get(f"/studies/{STUDY}/entry").text).find("script",
                                                               src="/static/idle.js")
    assert script is not None and script["data-idle-seconds"] == "120"
    js = c.get("/static/idle.js")
    assert js.status_code == 200 and "idle-blank" in js.text
    assert state.settings.idle_timeout_minutes == 10  # the fallback: EDC_IDLE_TIMEOUT_MINUTES
    c.cookies.clear()
    assert soup(c.get("/login").text).find("script", src="/static/idle.js") is None
