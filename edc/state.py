"""What the running application holds: settings, engine, keys and the ledger writer.

Built once at start-up (``edc serve``, ``edc`` commands, tests) and passed down; domain code
receives the pieces it needs as arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit_trail.service import Ledger
from edc import keyring
from edc.db import (
    SQLITE_READ_SLOTS,
    check_schema,
    make_engine,
    read_session_factory,
    request_sessions_factory,
    request_slots,
    runs_on_loop,
    serves_readers,
    session_factory,
)
from edc.errors import ServerBusy
from edc.jobs.reads import ReadBuffer
from edc.settings import Settings
from studies.accounts.config import AuthConfig, parse_networks
from studies.accounts.ratelimit import LoginLimiter, RateLimiter, SharedRateLimiter
from studies.oversight.service import AccessRules, parse_days, parse_hours

# A pure function of the settings' text; ``auth`` is read on every request, and parsing the
# networks was a tenth of the session lookup's CPU time (docs/benchmarks-entry.md).
_networks = lru_cache(maxsize=32)(parse_networks)

# How long a request waits for a database slot before it is answered 503 (SQLite's own busy
# timeout is the same).
SLOT_WAIT_SECONDS = 60


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: keyring.Keyring
    ledger: Ledger
    login_limiter: LoginLimiter | None = field(default=None)
    # Web requests holding a database transaction at once (edc.deps.get_db).
    request_slots: anyio.Semaphore = field(init=False)
    read_sessions: sessionmaker[Session] = field(init=False)
    # Views of clinical data waiting to be written to the ledger (edc/jobs/reads.py).
    reads: ReadBuffer = field(init=False)
    # SQLite: read-only requests are served in deferred transactions, beside the writer, with
    # slots of their own (None on PostgreSQL, where every request takes a pool slot).
    reader_sessions: sessionmaker[Session] | None = field(init=False)
    reader_slots: anyio.Semaphore | None = field(init=False)
    # A quick request's database work runs on the event loop thread (edc.db.runs_on_loop)
    on_loop: bool = field(init=False)

    def __post_init__(self) -> None:
        self.reads = ReadBuffer(rules=self.access_rules, batch=self.settings.read_audit_batch)
        slots = request_slots(self.engine, self.settings.request_slots)
        self.request_slots = anyio.Semaphore(slots)
        self.read_sessions = read_session_factory(self.engine)
        readers = serves_readers(self.engine)
        self.on_loop = runs_on_loop(self.engine, slots)
        self.reader_sessions = request_sessions_factory(self.engine) if readers else None
        self.reader_slots = anyio.Semaphore(SQLITE_READ_SLOTS) if readers else None
        if self.login_limiter is None:
            # PostgreSQL: every web process counts the same attempts (the database); SQLite is
            # one process, whose request transaction already holds the one write lock.
            per_account = self.settings.login_rate_per_account
            per_client = self.settings.login_rate_per_client
            self.login_limiter = (
                SharedRateLimiter(self.sessions, per_account=per_account, per_client=per_client)
                if self.shared else RateLimiter(per_account=per_account, per_client=per_client))

    @asynccontextmanager
    async def db_slot(self, reader: bool = False) -> AsyncIterator[None]:
        """Hold one of the request database slots while a request (or a refusal being
        recorded) uses the database; ServerBusy (503) when none frees up in time. ``reader``:
        one of the readers' slots (SQLite) instead of the writer's."""
        slots = self.reader_slots if reader and self.reader_slots else self.request_slots
        try:
            slots.acquire_nowait()  # a free slot: taken without a trip through the event loop
        except anyio.WouldBlock:
            try:
                with anyio.fail_after(SLOT_WAIT_SECONDS):
                    await slots.acquire()
            except TimeoutError:
                raise ServerBusy() from None
        try:
            yield
        finally:
            slots.release()

    @property
    def access_rules(self) -> AccessRules:
        """The abnormal-access rules the deployment chose (§11.1.2.4, §11.3.4.9 d)."""
        s = self.settings
        return AccessRules(
            networks=parse_networks(s.effective_hospital_networks),
            hours=parse_hours(s.working_hours), days=parse_days(s.working_days),
            zone=s.display_timezone, bulk_subjects=s.bulk_read_subjects,
            bulk_window=dt.timedelta(minutes=s.bulk_read_minutes),
            refusals=s.refusal_flag_count,
            refusal_window=dt.timedelta(minutes=s.refusal_flag_minutes))

    @property
    def shared(self) -> bool:
        """Several processes may share this database (PostgreSQL); SQLite is one process."""
        return self.engine.dialect.name == "postgresql"

    @property
    def auth(self) -> AuthConfig:
        """The authentication policy the deployment chose, for the accounts domain."""
        s = self.settings
        return AuthConfig(
            password_min_length=s.password_min_length,
            password_require_classes=s.password_require_classes,
            password_max_age_days=s.password_max_age_days,
            lockout_threshold=s.lockout_threshold,
            lockout_window=dt.timedelta(minutes=s.lockout_window_minutes),
            lockout_duration=dt.timedelta(minutes=s.lockout_minutes),
            hospital_networks=_networks(s.effective_hospital_networks),
            second_factor_enforced=s.second_factor_enforced,
            totp_key=self.keys.session_key,
            idle_timeout=dt.timedelta(minutes=s.idle_timeout_minutes),
            session_refresh=dt.timedelta(seconds=s.session_refresh_seconds),
            session_lifetime=dt.timedelta(hours=s.session_lifetime_hours),
            api_token_max_days=s.api_token_max_days,
        )


def build_state(settings: Settings, *, engine: Engine | None = None,
                check: bool = True) -> AppState:
    """Open the database and the key directory; raise one-line errors if either is unusable."""
    keys = keyring.load(settings.key_dir)
    engine = engine or make_engine(settings.database_url)
    if check:
        check_schema(engine)
    return AppState(
        settings=settings, engine=engine, sessions=session_factory(engine), keys=keys,
        ledger=Ledger(signer=keys.signer, checkpoint_every=settings.checkpoint_every),
    )
