"""Test fixtures. The schema is built by running the migrations (never ``create_all``); each
test runs inside a transaction that is rolled back; the app's session is swapped for the
test's. Set ``EDC_TEST_DATABASE_URL`` to run the same suite on PostgreSQL."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from factories import VITALS, make_entry_study, make_lock_team, make_user
from fastapi.testclient import TestClient
from in_test_session import use_test_session
from pages_util import ENGLISH
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc import keyring
from edc.app import SERVER_OPTIONS, create_app
from edc.db import alembic_config, make_engine, normalise_url, session_factory
from edc.settings import Settings
from edc.state import AppState
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel import i18n
from studies.kernel.roles import Role

PG_URL = os.environ.get("EDC_TEST_DATABASE_URL")


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (embedded)'}"


def migrate(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    engine.dispose()


def create_empty_database(tmp_path: Path, pg: str | None = PG_URL) -> str:
    """A new database without any schema: on the PostgreSQL server ``pg`` names (by default
    the one under test), else an SQLite file (not yet created) in ``tmp_path``; its URL."""
    if pg:
        name = f"edc_t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(normalise_url(pg), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return make_url(normalise_url(pg)).set(database=name).render_as_string(
            hide_password=False)
    return f"sqlite:///{tmp_path / f'edc-{uuid.uuid4().hex[:8]}.sqlite3'}"


def create_database(tmp_path: Path, pg: str | None = PG_URL) -> str:
    """A fresh, migrated database (see ``create_empty_database``); returns its URL. (The
    benchmarks use it too.)"""
    url = create_empty_database(tmp_path, pg)
    migrate(url)
    return url


def drop_database(url: str, pg: str | None = PG_URL) -> None:
    if pg:
        name = make_url(url).database
        admin = create_engine(normalise_url(pg), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serving(state: AppState) -> Iterator[str]:
    """The app served by a real uvicorn on a free local port (no session override: every
    request commits for real); yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port,
                                       log_level="warning", **SERVER_OPTIONS))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        state.engine.dispose()


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = create_database(tmp_path_factory.mktemp("db"))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys") / "keys"
    keyring.create(d, origin="test.hospital/ledger")
    return d


@pytest.fixture(scope="session")
def keys(key_dir: Path) -> keyring.Keyring:
    return keyring.load(key_dir)


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Domain calls outside a request (and commands) speak English in the tests, as the test
    clients ask for it; tests/test_i18n.py checks the Chinese."""
    process = i18n.process_language()
    with i18n.language("en"):
        yield
    i18n.set_process_language(process)  # a command run in the test set it


@pytest.fixture(autouse=True)
def _no_login_attempts_counted(request: pytest.FixtureRequest) -> None:
    """On PostgreSQL the login rate limit is counted in the database (every web process sees
    the same counts), committed beside the test's rolled-back session: each test on the
    shared database starts with no attempts counted, as each had its own limiter before."""
    if PG_URL and "db_url" in request.fixturenames:
        eng = request.getfixturevalue("engine")
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM login_throttle"))


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its minimum cost, for modules that log many people in
    (``pytestmark = pytest.mark.usefixtures("fast_password_hashing")``); the accounts tests
    cover the real cost."""
    import nacl.pwhash

    from studies.accounts import service as accounts

    monkeypatch.setattr(accounts, "hash_password", lambda pw: nacl.pwhash.argon2id.str(
        pw.encode(), opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN).decode())


@pytest.fixture
def ledger(keys: keyring.Keyring) -> Ledger:
    return Ledger(signer=keys.signer, checkpoint_every=1000)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    conn = engine.connect()
    trans = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield s
    finally:
        s.close()
        trans.rollback()
        conn.close()


@pytest.fixture
def settings(db_url: str, key_dir: Path) -> Settings:
    # The second factor is exercised by tests/studies/test_second_factor.py and the policy
    # walk (which turn it on); other tests log in with a password from "testclient".
    return Settings(database_url=db_url, key_dir=key_dir, environment="test",
                    second_factor_enforced=False, upload_dir=key_dir.parent / "uploads")


@pytest.fixture
def state(settings: Settings, engine: Engine, keys: keyring.Keyring, ledger: Ledger) -> AppState:
    return AppState(settings=settings, engine=engine, sessions=session_factory(engine), keys=keys,
                    ledger=ledger)


@pytest.fixture
def app_client(state: AppState, session: Session) -> Iterator[TestClient]:
    app = create_app(state)
    use_test_session(app, session)
    with TestClient(app, base_url="http://testserver", headers=ENGLISH) as c:
        yield c


@contextmanager
def app_with(settings: Settings, engine: Engine, keys: keyring.Keyring, ledger: Ledger,
             session: Session, *, client: tuple[str, int],
             **overrides: object) -> Iterator[tuple[TestClient, AppState]]:
    """The app with some settings changed (``overrides``), on the test's session, called from
    the address ``client``."""
    state = AppState(settings=settings.model_copy(update=overrides), engine=engine,
                     sessions=session_factory(engine), keys=keys, ledger=ledger)
    app = create_app(state)
    use_test_session(app, session)
    with TestClient(app, base_url="http://testserver", headers=ENGLISH, client=client) as c:
        yield c, state


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own, for tests that commit (CLI, concurrency, crashes)."""
    url = create_database(tmp_path)
    yield url
    drop_database(url)


# Every role of one study (the lock team, a sponsor) and the hospital roles, with one form saved:
# the cast of the navigation and language walks.
@pytest.fixture
def everyone(session: Session, ledger: Ledger) -> dict[str, Any]:
    """Every role, with a vital-signs form saved for S01-ENT01."""
    make_entry_study(session, ledger)
    study = "ENT-2026-01"
    team = make_lock_team(session, ledger, study)
    make_user(session, ledger, "sponsor", Role.SPONSOR, study=study)
    make_user(session, ledger, "committee", Role.COMMITTEE_MEMBER)
    make_user(session, ledger, "custodian", Role.CUSTODIAN)
    make_user(session, ledger, "auditor", Role.AUDITOR)
    make_user(session, ledger, "admin", Role.ADMIN)
    entry.save_form(session, ledger, actor=team["inv"], study_code=study,
                    subject_code="S01-ENT01", event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    return team
