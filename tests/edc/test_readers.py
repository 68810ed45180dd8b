"""Reads do not take the writer (issue 17): against a real uvicorn whose requests commit for
real, a page view on SQLite neither waits for the write lock nor writes the session's last use
(it is written at most every ``EDC_SESSION_REFRESH_SECONDS``, after the read, in a transaction
of its own); a GET that does write (an audited download) is still served and audited; and a
stale save is still refused 409 when saves race."""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import serving
from factories import PASSWORD, VITALS, approved_export, make_entry_study, make_user
from sqlalchemy import func, select, update

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import AppState, build_state
from studies.accounts import service as accounts
from studies.accounts.models import UserSession
from studies.kernel.events import Action
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
CODE = "S01-R0001"
FORM = f"/api/v1/studies/{STUDY}/entry/{CODE}/baseline/vital_signs"
REFRESH = 30


@pytest.fixture
def served(fresh_url: str, tmp_path: Path) -> Iterator[tuple[str, AppState, list[str]]]:
    """A served entry study; sessions of two investigators and a data manager."""
    keys = tmp_path / "keys"
    keyring.create(keys, origin="readers.test/ledger")
    engine = make_engine(fresh_url)
    tokens = []
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger, subjects=(CODE,))
        for name, role in (("inv1", Role.INVESTIGATOR), ("inv2", Role.INVESTIGATOR),
                           ("dm1", Role.DATA_MANAGER)):
            user = make_user(session, ledger, name, role, study=STUDY)
            token, _ = accounts.login(session, ledger, username=name, password=PASSWORD,
                                      client="127.0.0.1")
            tokens.append(token)
        approved_export(session, STUDY, user)  # dm1's exports are approved (§11.3.4.1 c)
    engine.dispose()
    state = build_state(Settings(database_url=fresh_url, key_dir=keys, environment="test",
                                 second_factor_enforced=False,
                                 session_refresh_seconds=REFRESH,
                                 upload_dir=tmp_path / "uploads"))
    with serving(state) as url:
        yield url, state, tokens


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, cookies={"edc_session": token})


def last_seen(state: AppState, token: str) -> dt.datetime:
    with state.sessions() as s:
        return s.get(UserSession, accounts._token_id(token)).last_seen  # type: ignore[union-attr]


def backdate(state: AppState, token: str, seconds: int) -> dt.datetime:
    """Move the session's last use ``seconds`` into the past; returns the new value."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    with state.sessions() as s, s.begin():
        s.execute(update(UserSession).where(UserSession.id == accounts._token_id(token))
                  .values(last_seen=when))
    return last_seen(state, token)


def test_a_read_does_not_write_the_sessions_last_use_until_it_is_due(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    before = backdate(state, tokens[0], REFRESH - 10)  # used 20 s ago: not due
    with client(url, tokens[0]) as c:
        for _ in range(3):
            r = c.get(FORM)
            assert r.status_code == 200 and r.json()["version"] == 0
        assert last_seen(state, tokens[0]) == before
        due = backdate(state, tokens[0], REFRESH + 5)  # used 35 s ago: due
        assert c.get(FORM).status_code == 200
        refreshed = last_seen(state, tokens[0])
        assert refreshed > due + dt.timedelta(seconds=REFRESH)
        assert c.get(FORM).status_code == 200  # just refreshed: nothing written again
        assert last_seen(state, tokens[0]) == refreshed


def test_a_save_refreshes_last_use_only_when_due(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    before = backdate(state, tokens[0], 5)
    with client(url, tokens[0]) as c:
        r = c.put(FORM, json={"base_version": 0, "values": VITALS})
        assert r.status_code == 200, r.text
        assert last_seen(state, tokens[0]) == before
        due = backdate(state, tokens[0], REFRESH + 1)
        r = c.put(FORM, json={"base_version": 1, "values": {**VITALS, "sbp": "121"},
                              "reasons": {"sbp": "transcription_error"}})
        assert r.status_code == 200, r.text
        assert last_seen(state, tokens[0]) > due


def test_the_idle_timeout_still_ends_a_session(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    backdate(state, tokens[0], 11 * 60)  # idle for 11 minutes (the timeout is 10)
    with client(url, tokens[0]) as c:
        r = c.get(FORM)
    assert r.status_code == 401
    with state.sessions() as s:
        ended = s.get(UserSession, accounts._token_id(tokens[0]))
        assert ended is not None
        timeouts = s.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.action == Action.AUTH_TIMEOUT.value)).scalar_one()
    assert timeouts == 1


def test_a_read_is_served_while_another_connection_holds_the_write_lock(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    if state.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single write lock; PostgreSQL readers never wait for writers")
    backdate(state, tokens[0], 1)
    holder = sqlite3.connect(state.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held until the end of the test
    holder.execute("UPDATE user_session SET end_reason = end_reason")
    try:
        with client(url, tokens[0]) as c:
            r = c.get(FORM, timeout=5)
            assert r.status_code == 200 and r.json()["version"] == 0
            for page in (f"/studies/{STUDY}/subjects/{CODE}", f"/studies/{STUDY}/entry",
                         f"/studies/{STUDY}/entry/{CODE}/baseline/vital_signs"):
                r = c.get(page, timeout=5)
                assert r.status_code == 200 and "<form" in r.text, page
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_get_that_writes_is_served_as_a_writer_and_audited(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    with state.sessions() as s:
        before = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    with client(url, tokens[2]) as c:
        r = c.get(f"/api/v1/studies/{STUDY}/export/forms/vital_signs.csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    with state.sessions() as s:
        after = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
    assert after == before + 1  # the download's ledger entry, once


def test_racing_saves_one_wins_the_others_are_refused_409(
        served: tuple[str, AppState, list[str]]) -> None:
    url, state, tokens = served
    with client(url, tokens[0]) as c:
        assert c.put(FORM, json={"base_version": 0, "values": VITALS}).status_code == 200
    for round_ in range(3):
        answers: list[int] = []
        barrier = threading.Barrier(6)

        def save(token: str, sbp: str, base: int = round_ + 1,
                 barrier: threading.Barrier = barrier, answers: list[int] = answers) -> None:
            with client(url, token) as c:
                barrier.wait()
                r = c.put(FORM, json={"base_version": base,
                                      "values": {**VITALS, "sbp": sbp},
                                      "reasons": {"sbp": "transcription_error"}})
                answers.append(r.status_code)
                c.get(FORM)

        # a new value for every save (a save that changes nothing is answered 200 as it is)
        threads = [threading.Thread(target=save, args=(tokens[n % 2], str(130 + 10 * round_ + n)))
                   for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [200, 409, 409, 409, 409, 409]
    with client(url, tokens[0]) as c:
        assert c.get(FORM).json()["version"] == 4


def count_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions requests hand to a worker thread (``edc.threads``)."""
    import edc.sessions
    import edc.threads

    hops: list[str] = []
    in_thread = edc.threads.in_thread

    async def counted(fn: Any, *args: Any) -> Any:
        inner = fn
        while isinstance(inner, functools.partial):
            inner = inner.func
        hops.append(getattr(inner, "__name__", type(inner).__name__))
        return await in_thread(fn, *args)

    monkeypatch.setattr(edc.threads, "in_thread", counted)
    monkeypatch.setattr(edc.sessions, "in_thread", counted)
    return hops


def test_worker_thread_hops_and_the_commit_in_the_endpoints(
        served: tuple[str, AppState, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hop to a worker thread costs CPU (docs/benchmarks-entry.md). A form read or save
    is ``quick``: once its transaction is begun it runs on the event loop thread, with no hop
    at all, on SQLite and on PostgreSQL with one request transaction per web process (the
    default). Any other route (here the account's own page) makes two — the actor's session
    lookup, then the endpoint, whose transaction is committed in that same thread as soon as
    it returns (``edc.routing``). The save is committed (a new session reads it), and a save
    refused by the domain is rolled back as before."""
    url, state, tokens = served
    hops = count_hops(monkeypatch)
    two = ["_resolve_actor", "call_and_commit"]
    quick: list[str] = []
    assert state.on_loop
    with client(url, tokens[0]) as c:
        saved = c.put(FORM, json={"base_version": 0, "values": VITALS})
        assert saved.status_code == 200 and saved.json()["version"] == 1
        assert hops == quick
        hops.clear()
        assert c.get(FORM).json()["version"] == 1
        assert hops == quick
        hops.clear()
        page = c.get(f"/studies/{STUDY}/entry/{CODE}/baseline/vital_signs")
        assert page.status_code == 200 and "<form" in page.text
        assert hops == quick  # the data-entry page is quick as well
        hops.clear()
        assert c.get("/api/v1/me").json()["username"] == "inv1"
        assert hops == two
        stale = c.put(FORM, json={"base_version": 0, "values": {**VITALS, "sbp": "150"}})
        assert stale.status_code == 409
    with state.sessions() as s:  # the first save committed, the stale one left nothing
        assert s.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.action == Action.ENTRY_CREATE)).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.action == Action.ENTRY_UPDATE)).scalar_one() == 0


class SaveWaiting:
    """A first save of the form, sent from a thread of its own while a test holds a lock."""

    def __init__(self, url: str, token: str) -> None:
        self.answers: list[httpx.Response] = []

        def save() -> None:
            with client(url, token) as c:
                self.answers.append(c.put(FORM, json={"base_version": 0, "values": VITALS}))

        self.thread = threading.Thread(target=save)
        self.thread.start()

    def still_waiting(self) -> bool:
        return self.thread.is_alive() and not self.answers

    def saved_once(self, url: str, token: str) -> None:
        """Once the lock is free: the save answered 200 as version 1, and it is read back."""
        self.thread.join(timeout=30)
        assert [a.status_code for a in self.answers] == [200]
        assert self.answers[0].json()["version"] == 1
        with client(url, token) as c:
            assert c.get(FORM).json()["version"] == 1


def test_a_quick_save_waits_for_the_write_lock_off_the_event_loop(
        served: tuple[str, AppState, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A quick save on SQLite whose write lock another connection holds (a backup, a job,
    an ``edc`` command) waits for it in a worker thread: meanwhile the server goes on
    answering, and once the lock is free the save is made and acknowledged."""
    url, state, tokens = served
    if state.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single write lock; PostgreSQL's row locks: the test below")
    hops = count_hops(monkeypatch)
    holder = sqlite3.connect(state.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        saving = SaveWaiting(url, tokens[0])
        threading.Event().wait(0.5)  # the save has reached the server and waits
        with client(url, tokens[1]) as c:  # the event loop is free: other requests answered
            for _ in range(3):
                assert c.get("/api/v1/health", timeout=5).status_code == 200
                r = c.get(FORM, timeout=5)
                assert r.status_code == 200 and r.json()["version"] == 0
        assert saving.still_waiting()
        assert hops[0] == "connection" and hops.count("connection") == 1  # in a worker thread
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    saving.saved_once(url, tokens[1])


def test_a_quick_save_that_waits_for_a_row_lock_moves_off_the_event_loop(
        served: tuple[str, AppState, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a quick save runs on the event loop, and waits there for a row lock at
    most ``LOOP_LOCK_TIMEOUT_MS``. When another transaction holds the ledger's head longer (an
    ``edc`` command, a job, another web process), the save's transaction is rolled back and
    its work redone in a worker thread, where it waits: meanwhile the event loop goes on
    answering, and once the lock is free the save is made once and acknowledged, its one
    ledger entry in a ledger that verifies."""
    url, state, tokens = served
    if state.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's row locks; SQLite's write lock: the test above")
    from audit_trail.service import verify
    from edc.db import LOOP_LOCK_TIMEOUT_MS

    hops = count_hops(monkeypatch)
    holder = state.engine.raw_connection()
    holder.cursor().execute("SELECT seq FROM ledger_head WHERE id = 1 FOR UPDATE")
    try:
        saving = SaveWaiting(url, tokens[0])
        threading.Event().wait(3 * LOOP_LOCK_TIMEOUT_MS / 1000)  # longer than the loop waits
        with client(url, tokens[1]) as c:  # the event loop is free: the server answers
            for _ in range(3):  # (the process's database requests queue for its one slot)
                assert c.get("/api/v1/health", timeout=5).status_code == 200
        assert saving.still_waiting()
        assert hops[0] == "_redo" and hops.count("_redo") == 1  # moved to a worker thread
    finally:
        holder.rollback()
        holder.close()
    saving.saved_once(url, tokens[1])
    with state.sessions() as s:
        assert s.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.action == Action.ENTRY_CREATE)).scalar_one() == 1
        assert not verify(s, vkey=state.keys.signer.vkey).problems  # raises if broken


def test_a_page_save_with_an_upload_moved_off_the_event_loop_stores_the_whole_file(
        served: tuple[str, AppState, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A page save is done again when it moves off the event loop (the test above): the file
    it carries is read again from its start, so the saved field holds the whole file, and the
    upload is recorded once."""
    url, state, tokens = served
    if state.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's row locks move a request's work off the loop")
    from bs4 import BeautifulSoup
    from test_entry_files import PDF as pdf
    from test_entry_files import _form_data

    from edc.db import LOOP_LOCK_TIMEOUT_MS

    page = f"/studies/{STUDY}/entry/{CODE}/baseline/labs"
    hops = count_hops(monkeypatch)
    answers: list[httpx.Response] = []
    with client(url, tokens[0]) as c:
        data = _form_data(BeautifulSoup(c.get(page).text, "html.parser"))
        holder = state.engine.raw_connection()
        holder.cursor().execute("SELECT seq FROM ledger_head WHERE id = 1 FOR UPDATE")
        saving = threading.Thread(target=lambda: answers.append(c.post(
            page, data=data, files={"upload.lab_report": ("scan.pdf", pdf, "application/pdf")},
            follow_redirects=True)))
        try:
            saving.start()
            threading.Event().wait(3 * LOOP_LOCK_TIMEOUT_MS / 1000)
            assert saving.is_alive() and hops.count("_redo") == 1  # moved, waiting
        finally:
            holder.rollback()
            holder.close()
        saving.join(timeout=30)
        assert [a.status_code for a in answers] == [200], answers[0].text[-800:]
        link = BeautifulSoup(c.get(page).text, "html.parser").select_one(
            "#field-lab_report a.file")
        assert link.get_text().startswith("scan.pdf")
        assert c.get(link["href"]).content == pdf
    with state.sessions() as s:
        for action in (Action.ENTRY_FILE_UPLOAD, Action.ENTRY_CREATE):
            assert s.execute(select(func.count()).select_from(LedgerEntry).where(
                LedgerEntry.action == action)).scalar_one() == 1
