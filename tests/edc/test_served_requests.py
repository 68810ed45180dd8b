"""Requests against a real uvicorn server whose every request commits for real (no test
transaction around it): a save is acknowledged only once it has committed, and many clients
saving at once are all answered — none waits out a timeout, none gets a 500."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import serving
from factories import PASSWORD, VITALS, make_entry_study, make_user
from pages_util import ENGLISH
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import AppState, build_state
from studies.accounts import service as accounts
from studies.entry.models import FormRecord
from studies.kernel.roles import Role
from studies.subjects.models import Subject

STUDY = "ENT-2026-01"
CODES = tuple(f"S01-C{n:04d}" for n in range(8))
CLIENTS = 30


def form_url(code: str) -> str:
    return f"/api/v1/studies/{STUDY}/entry/{code}/baseline/vital_signs"


@pytest.fixture
def served(fresh_url: str, tmp_path: Path) -> Iterator[tuple[str, AppState, list[str]]]:
    """A served entry study and one logged-in investigator session per client."""
    keys = tmp_path / "keys"
    keyring.create(keys, origin="served.test/ledger")
    engine = make_engine(fresh_url)
    tokens = []
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger, subjects=CODES)
        for n in range(CLIENTS):
            make_user(session, ledger, f"inv{n}", Role.INVESTIGATOR, study=STUDY)
            token, _ = accounts.login(session, ledger, username=f"inv{n}", password=PASSWORD,
                                      client="127.0.0.1")
            tokens.append(token)
    engine.dispose()
    state = build_state(Settings(database_url=fresh_url, key_dir=keys, environment="test",
                                 second_factor_enforced=False))
    with serving(state) as url:
        yield url, state, tokens


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, cookies={"edc_session": token},
                        headers=ENGLISH)


def ledger_size(state: AppState) -> int:
    with state.sessions() as s:
        return int(s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


def test_a_save_is_acknowledged_only_once_it_has_committed(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    with client(url, tokens[0]) as c:
        assert c.get(form_url(CODES[0])).json()["version"] == 0
        before = ledger_size(state)

        def refuse_commit(conn: Any) -> None:  # the database gives up at COMMIT
            raise OperationalError("COMMIT", {}, Exception("database is locked"))

        event.listen(state.engine, "commit", refuse_commit)
        try:
            r = c.put(form_url(CODES[0]), json={"base_version": 0, "values": VITALS})
        finally:
            event.remove(state.engine, "commit", refuse_commit)
        # The client is told the truth — not 200 for a change the database never kept.
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "busy"
        assert "nothing was saved" in r.json()["error"]["message"]
        assert int(r.headers["Retry-After"]) > 0
        after = c.get(form_url(CODES[0])).json()
        assert after["version"] == 0 and not after["values"].get("sbp")
        assert ledger_size(state) == before
        # And once the database is well again, the same save goes through.
        r = c.put(form_url(CODES[0]), json={"base_version": 0, "values": VITALS})
        assert r.status_code == 200 and r.json()["version"] == 1


def test_many_clients_saving_at_once_are_all_answered(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    statuses: Counter[int] = Counter()
    saved: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    end = time.monotonic() + 3

    def work(token: str, seed: int) -> None:
        rnd = random.Random(seed)
        with client(url, token) as c:
            try:
                while time.monotonic() < end:
                    code = rnd.choice(CODES)
                    g = c.get(form_url(code))
                    if g.status_code != 200:
                        with lock:
                            statuses[g.status_code] += 1
                        continue
                    values = {**VITALS, "sbp": str(rnd.randrange(60, 260))}
                    base = g.json()["version"]
                    r = c.put(form_url(code), json={
                        "base_version": base, "values": values,
                        "reasons": {"sbp": "transcription_error"} if base else {}})
                    with lock:
                        statuses[r.status_code] += 1
                        if r.status_code == 200 and r.json()["saved"]:  # not "no change"
                            saved[code] += 1
            except httpx.HTTPError as exc:  # a timeout: the server stalled
                with lock:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=work, args=(t, n)) for n, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert set(statuses) <= {200, 409}, statuses  # no 500, no 503
    assert statuses[200] >= len(CODES)
    with state.sessions() as s:  # every acknowledged save is there, and none twice
        versions = dict(s.execute(select(Subject.code, FormRecord.version).join(
            FormRecord, FormRecord.subject_id == Subject.id)).all())
    assert versions == dict(saved)


def test_request_slots_per_web_process_are_a_setting(fresh_url: str, tmp_path: Path) -> None:
    """``EDC_REQUEST_SLOTS``: how many requests of one PostgreSQL web process hold a database
    transaction at once — one unless the operator raises it, at most the connection pool's
    size; SQLite always has its one writer. A value out of range is refused, naming it."""
    from pydantic import ValidationError

    keys = tmp_path / "keys"
    keyring.create(keys, origin="slots.test/ledger")
    pg = make_engine(fresh_url).dialect.name == "postgresql"
    for configured, expected in ((None, 1), (4, 4 if pg else 1), (20, 20 if pg else 1)):
        extra = {} if configured is None else {"request_slots": configured}
        state = build_state(Settings(database_url=fresh_url, key_dir=keys, environment="test",
                                     **extra))
        assert state.request_slots.value == expected
        state.engine.dispose()
    for bad in (0, 21):
        with pytest.raises(ValidationError, match="request_slots"):
            Settings(database_url=fresh_url, key_dir=keys, request_slots=bad)
