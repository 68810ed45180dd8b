"""Database engines: SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE) and PostgreSQL (psycopg 3,
synchronous_commit=on); schema-version checks with one-line errors."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_DIR = ROOT / "alembic"


# PostgreSQL connections: the web app lets at most EDC_REQUEST_SLOTS (≤ PG_POOL_SIZE) requests
# hold a transaction at once (see ``request_slots``); the rest serves work outside requests
# (refusals recorded in their own transaction, streamed exports, the job runner).
PG_POOL_SIZE = 20
PG_MAX_OVERFLOW = 10
READ_ONLY = "edc_read_only"
# A web request served as a reader on SQLite (``edc.sessions``): a deferred transaction that
# must not write; its first write raises ``NeedsWriter`` and the request is served again as a
# writer (``edc.app.ReadersFirstMiddleware``).
REQUEST_READ = "edc_request_read"
# How many read-only web requests may hold a deferred SQLite transaction at once (beside the
# one writer); more would only contend for the GIL and the connection pool.
SQLITE_READ_SLOTS = 4


# A web request's transaction begun on the event loop thread (``begin_now``). SQLite: BEGIN
# IMMEDIATE without waiting for the write lock; ``WriteLockTaken`` if another holds it.
# PostgreSQL: a lock wait longer than LOOP_LOCK_TIMEOUT_MS fails (``lock_wait_too_long``), and
# the request's work is redone in a worker thread, where it waits (``edc.threads``).
NO_WAIT = "edc_no_wait"
BUSY_TIMEOUT_MS = 60_000
LOOP_LOCK_TIMEOUT_MS = 200
# A pooled PostgreSQL connection that sat unused this long is pinged before it is handed out.
PING_AFTER_IDLE_S = 1.0


class WriteLockTaken(Exception):  # noqa: N818 (a signal, not an error shown to anyone)
    """``begin_now``: another connection holds SQLite's write lock; nothing was begun."""


class NeedsWriter(Exception):  # noqa: N818 (a signal, not an error shown to anyone)
    """A request served as a reader tried to write; nothing was written (SQLite refused
    nothing: the statement was stopped before it reached the database)."""


class DatabaseError(Exception):
    """The database cannot be used; the message is one line that says what to do."""


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        u = make_url(normalise_url(url))
    except ArgumentError as exc:
        raise DatabaseError(f"EDC_DATABASE_URL is not a database URL: {exc}") from exc
    if u.get_backend_name() == "sqlite":
        engine = create_engine(
            u, connect_args={"check_same_thread": False, "timeout": 60}, **kwargs)
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            path = Path(u.database)
            path.parent.mkdir(parents=True, exist_ok=True)

            @event.listens_for(engine, "do_connect")
            def _private(*_args: Any) -> None:
                _create_private(path)
        _sqlite_setup(engine)
        _check_statements(engine, readers=True)
        return engine
    if u.get_backend_name() == "postgresql":
        kwargs = {"pool_size": PG_POOL_SIZE, "max_overflow": PG_MAX_OVERFLOW, **kwargs}
        engine = create_engine(
            u, connect_args={"options": "-c synchronous_commit=on -c timezone=UTC",
                             "connect_timeout": 10},
            **kwargs)
        _pg_setup(engine)
        _check_statements(engine, readers=False)
        return engine
    raise DatabaseError(f"unsupported database {u.get_backend_name()!r}: use sqlite or postgresql")


def _pg_setup(engine: Engine) -> None:
    """A transaction begun on the event loop (``NO_WAIT``) waits at most LOOP_LOCK_TIMEOUT_MS
    for a row lock. A connection is pinged before it is handed out only if it sat unused in
    the pool for PING_AFTER_IDLE_S or more: a dropped connection (the server restarted, a
    firewall closed it) is replaced before a request uses it, without a round trip for every
    request of a busy server. A connection dropped while in steady use fails its request
    (503, edc.errors), and the pool then replaces all its connections."""

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(NO_WAIT):
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOOP_LOCK_TIMEOUT_MS}")

    @event.listens_for(engine.pool, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc  # the pool connects afresh


def lock_wait_too_long(exc: BaseException) -> bool:
    """A statement of a transaction begun on the event loop gave up waiting for a row lock
    (PostgreSQL's lock_not_available after LOOP_LOCK_TIMEOUT_MS): the transaction was aborted
    before it changed anything that another can see."""
    return (isinstance(exc, OperationalError)
            and getattr(exc.orig, "sqlstate", None) == "55P03")


def _create_private(path: Path) -> None:
    """Create the SQLite file at the first connection, before SQLite opens it, readable by its
    owner only (0600): SQLite gives the ``-wal`` and ``-shm`` files the database file's mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _nul_field(params: Any, names: Any = None) -> str | None:
    """The name of the first bound text parameter holding a NUL character (``""`` when it
    has none), or None. ``names``: the parameter names of a positional statement."""
    if isinstance(params, dict):
        for key, value in params.items():
            if type(value) is str and "\x00" in value:
                return re.sub(r"_\d+$", "", str(key))
        return None
    if isinstance(params, list | tuple):
        for i, value in enumerate(params):
            kind = type(value)
            if kind is str:
                if "\x00" in value:
                    name = names[i] if names and i < len(names) else ""
                    return re.sub(r"_\d+$", "", str(name))
            elif kind in _CONTAINERS:
                found = _nul_field(value, names)
                if found is not None:
                    return found
    return None


_CONTAINERS = frozenset({dict, list, tuple})


def _check_statements(engine: Engine, *, readers: bool) -> None:
    """Before every statement, in one listener (each costs per statement):

    - refuse (422) a statement binding text with a NUL character, on both databases alike:
      PostgreSQL cannot store one in text (it would answer a database error), SQLite would;
    - ``readers`` (SQLite): stop a request served as a reader (a deferred transaction) that
      tries to write, before the statement runs: upgrading a deferred transaction to a writer
      could fail on a stale snapshot, so it is served again from the start as a writer."""

    @event.listens_for(engine, "before_cursor_execute")
    def _check(conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any,
               _executemany: bool) -> None:
        compiled = getattr(context, "compiled", None)
        field = _nul_field(parameters, getattr(compiled, "positiontup", None))
        if field is not None:
            raise InvalidInput(
                (f"{field}: " if field else "")
                + _("text must not contain a NUL character (U+0000)"),
                field=field or None)
        if readers and conn.get_execution_options().get(REQUEST_READ) and is_write(statement):
            raise NeedsWriter(statement.split(None, 1)[0])


def _sqlite_setup(engine: Engine) -> None:
    """WAL with synchronous=FULL (an acknowledged entry survives power loss); every transaction
    begins IMMEDIATE so writers serialise on the database lock instead of failing on upgrade."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A read-only session (``read_session_factory``) and a request served as a reader
        # begin deferred: under WAL they read a snapshot without taking the write lock, so a
        # long streamed export or a page view blocks no writer and waits for none. Everything
        # else begins IMMEDIATE: writers queue on the lock instead of failing on upgrade.
        options = conn.get_execution_options()
        deferred = options.get(READ_ONLY) or options.get(REQUEST_READ)
        if deferred or not options.get(NO_WAIT):
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
            return
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA busy_timeout=0")
        try:
            raw.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # sqlite3.OperationalError: database is locked
            raise WriteLockTaken(str(exc)) from exc
        finally:
            raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def begin_now(session: Session) -> None:
    """Begin a request's transaction on the event loop without waiting. SQLite: a reader's
    deferred transaction, or a writer's BEGIN IMMEDIATE if the write lock is free (else
    ``WriteLockTaken``, and the session is closed, nothing begun). PostgreSQL: a transaction
    whose lock waits give up after LOOP_LOCK_TIMEOUT_MS (``lock_wait_too_long``)."""
    try:
        session.connection(execution_options={NO_WAIT: True})
    except BaseException:
        session.close()
        raise


def runs_on_loop(engine: Engine, slots: int) -> bool:
    """Whether a quick request's database work runs on the event loop thread once its
    transaction is begun (``edc.threads``). SQLite: always (its calls are in-process). On
    PostgreSQL when a web process holds one request transaction at a time (``slots``, the
    default): the loop then waits on the network only while no other request of the process
    could use the database, and never long on a row lock (LOOP_LOCK_TIMEOUT_MS). With more
    slots the other transactions would wait for the loop, so every request runs in a worker
    thread."""
    return engine.dialect.name == "sqlite" or slots == 1


_READ_VERBS = frozenset({"SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT",
                         "RELEASE", "EXPLAIN"})
_WRITE_WORDS = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def is_write(statement: str) -> bool:
    """Whether an SQL statement may write (anything but a plain read or transaction control)."""
    verb = statement.lstrip()[:10].split(None, 1)[0].upper() if statement.strip() else ""
    if verb == "WITH":
        return bool(_WRITE_WORDS.search(statement))
    return verb not in _READ_VERBS


def end_session(session: Session, *, commit: bool) -> None:
    """Commit (or roll back) and close, in one call (one worker-thread hop for a request,
    ``edc.sessions``); a failed commit is rolled back and closed too."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for long reads (``edc audit verify``, a streamed export after its request has
    committed): one consistent snapshot that blocks no writer — a deferred transaction under
    WAL on SQLite, a read-only REPEATABLE READ transaction on PostgreSQL."""
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return sessionmaker(engine.execution_options(**options), expire_on_commit=False,
                        autoflush=False)


def request_sessions_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for web requests served as readers on SQLite: deferred transactions in which
    any write raises ``NeedsWriter``."""
    return sessionmaker(engine.execution_options(**{REQUEST_READ: True}),
                        expire_on_commit=False)


def serves_readers(engine: Engine) -> bool:
    """Whether read-only web requests are served apart from the writer (SQLite: its one write
    lock would otherwise serialise every page view; PostgreSQL readers never wait for it)."""
    return engine.dialect.name == "sqlite"


def request_slots(engine: Engine, configured: int) -> int:
    """How many writing web requests may hold a database transaction at once. SQLite has one
    writer, so writers queue in the event loop rather than in SQLite's sleeping busy handler
    (readers have ``SQLITE_READ_SLOTS`` of their own). PostgreSQL: ``EDC_REQUEST_SLOTS`` per
    web process (at most the pool's size, so a request never waits for a connection while
    holding a worker thread). One is the default: every further transaction in the process
    makes its threads contend for the GIL, which cost more CPU per save than it overlapped
    (docs/benchmarks-entry.md, "Fifth round"); the processes (``--workers``) give the
    parallelism."""
    if engine.dialect.name == "sqlite":
        return 1
    size = getattr(engine.pool, "size", None)
    return min(configured, int(size()) if callable(size) else PG_POOL_SIZE)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def check_schema(engine: Engine) -> None:
    """Refuse a database that is unreachable, not migrated, behind, or newer than this code."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    try:  # a read: it must not queue behind a writer on SQLite
        with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}; "
            "is the server running and EDC_DATABASE_URL right?") from exc
    head = script.get_current_head()
    if current is None:
        raise DatabaseError("the database has no schema yet; run `edc init` (or `edc migrate`)")
    if current == head:
        return
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise DatabaseError(
            f"the database schema (revision {current}) is newer than this program knows "
            f"(head {head}); upgrade the software before using this database")
    raise DatabaseError(
        f"the database schema (revision {current}) is behind this program (head {head}); "
        "run `edc migrate`")
