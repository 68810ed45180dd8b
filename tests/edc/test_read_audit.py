"""Reads audited (§11.3.4.1 d, §11.3.4.9 b–c): each view of clinical data — a form page and
its API, the history, the subject page, the lists — is one ledger entry naming who, what,
when and from where; written off the request path in batches, and the auditor's search
filters them."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from factories import VITALS, make_entry_study, make_user
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.jobs.reads import ReadAuditWorker, ReadBuffer, ReadEvent
from edc.state import AppState
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.actor import Actor
from studies.kernel.events import Action
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
SUBJECT = "S01-ENT01"
FORM_PATH = f"/studies/{STUDY}/entry/{SUBJECT}/baseline/vital_signs"


@pytest.fixture
def study(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)
    make_user(session, ledger, "aud", Role.AUDITOR)
    inv = Actor(user_id="inv", username="inv", display_name="Inv",
                grants=((Role.INVESTIGATOR, STUDY),))
    entry.save_form(session, ledger, actor=inv, study_code=STUDY, subject_code=SUBJECT,
                    event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))


def reads(session: Session, user: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(
        LedgerEntry.actor == user, LedgerEntry.action.like("read.%"))
        .order_by(LedgerEntry.seq)).scalars())


def test_each_view_of_clinical_data_is_one_ledger_entry(
        app_client: TestClient, session: Session, ledger: Ledger, state: AppState,
        study: None) -> None:
    login(app_client, "mon")
    views = [(FORM_PATH, Action.READ_FORM, "form", f"{SUBJECT}/baseline/vital_signs"),
             ("/api/v1" + FORM_PATH, Action.READ_FORM, "form",
              f"{SUBJECT}/baseline/vital_signs"),
             (FORM_PATH + "/history", Action.READ_HISTORY, "form",
              f"{SUBJECT}/baseline/vital_signs"),
             ("/api/v1" + FORM_PATH + "/items/sbp/history", Action.READ_HISTORY, "form",
              f"{SUBJECT}/baseline/vital_signs/sbp"),
             (f"/studies/{STUDY}/subjects/{SUBJECT}", Action.READ_SUBJECT, "subject", SUBJECT),
             (f"/studies/{STUDY}/subjects", Action.READ_LIST, "study", STUDY),
             (f"/studies/{STUDY}/entry", Action.READ_LIST, "study", STUDY)]
    for path, *_ in views:
        assert app_client.get(path).status_code == 200, path
    # nothing was written on the request path: the views wait in the buffer
    assert reads(session, "mon") == []
    assert state.reads.pending() == len(views)
    state.reads.flush(session, ledger)
    got = reads(session, "mon")
    assert [(e.action, e.entity_type, e.entity_id) for e in got] == \
        [(a, t, i) for _p, a, t, i in views]
    for e, (path, *_rest) in zip(got, views, strict=True):
        assert e.study == STUDY and e.client == "testclient" and e.outcome == "success"
        assert e.reason.startswith(f"GET {path} at 20")
    assert got[0].subject == SUBJECT and got[-1].subject is None
    # the auditor's search filters the reads
    login(app_client, "aud")
    page = soup(app_client.get("/audit/entries", params={"action": "read.*", "user": "mon"}).text)
    rows = page.select("table.audit tbody tr")
    assert len(rows) == len(views)
    assert all(r.find_all("td")[3].text.startswith("read.") for r in rows)


def test_a_refused_view_is_not_a_read(app_client: TestClient, session: Session,
                                      ledger: Ledger, state: AppState, study: None) -> None:
    make_user(session, ledger, "other", Role.MONITOR, study="OTHER-01")
    login(app_client, "other")
    assert app_client.get("/api/v1" + FORM_PATH).status_code == 403
    state.reads.flush(session, ledger)
    assert reads(session, "other") == []


def test_the_worker_writes_within_the_window_and_at_shutdown(fresh_url: str,
                                                            tmp_path: object) -> None:
    """Committed for real: a batch within the flush window, the rest when the server stops."""
    from pathlib import Path

    keys = Path(str(tmp_path)) / "keys"
    keyring.create(keys, origin="reads.test/ledger")
    engine = make_engine(fresh_url)
    try:
        ledger = Ledger(signer=keyring.load(keys).signer)
        buffer = ReadBuffer()
        worker = ReadAuditWorker(buffer, session_factory(engine), ledger, interval=0.2)

        def view(n: int) -> ReadEvent:
            return ReadEvent(action=Action.READ_FORM, username="mon", entity_type="form",
                             entity_id=f"S{n}/baseline/vital_signs", study=STUDY,
                             subject=f"S{n}", client="10.0.0.5", at=dt.datetime.now(dt.UTC),
                             what="GET /x")

        def written() -> int:
            with session_factory(engine)() as s:
                return len(reads(s, "mon"))

        worker.start()
        for n in range(3):
            buffer.record(view(n))
        deadline = time.monotonic() + 5
        while written() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert written() == 3
        worker.stop()
        # a long window: only the shutdown writes these
        slow = ReadAuditWorker(buffer, session_factory(engine), ledger, interval=60)
        slow.start()
        buffer.record(view(9))
        time.sleep(0.2)
        assert written() == 3
        slow.stop()
        assert written() == 4
    finally:
        engine.dispose()
