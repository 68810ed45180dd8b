"""Where a web request's database sessions come from: the request's own transaction, the
read-only session a streamed download reads in after the request has committed, and the
transaction of its own that an audited refusal is recorded in (the request's rolls back).

``request_sessions`` is the one dependency that says so. It takes nothing but the request, so
code outside dependency injection (the error handler, a streamed download) resolves it the
same way FastAPI does, through ``sessions_of``: whatever ``app.dependency_overrides`` puts in
its place serves all three (the tests serve every request in the test's session that way).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

import anyio
from fastapi import Request
from sqlalchemy.orm import Session

from edc.db import WriteLockTaken, begin_now, end_session, lock_wait_too_long
from edc.threads import ON_LOOP, OnLoop, in_thread, request_work
from studies.accounts.service import refresh_session

if TYPE_CHECKING:
    from edc.state import AppState


class Sessions(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """The request's transaction: committed when the block ends, rolled back on any
        exception."""

    def reading(self) -> AbstractContextManager[Session]:
        """A read-only session for a streamed download."""

    async def record(self, write: Callable[[Session], None]) -> None:
        """Run ``write`` in a transaction of its own and commit it."""


# Set in the ASGI scope of a request served as a reader (``edc.app.ReadersFirstMiddleware``).
READER = "edc.reader"

# The request's open transaction, for ``edc.routing.Route`` to commit in the endpoint's own
# worker thread as soon as the endpoint returns (``commit_now``): one worker-thread hop fewer
# per request than committing from the event loop.
_COMMIT: ContextVar[Callable[[], None] | None] = ContextVar("edc_commit", default=None)


def commit_now() -> None:
    """Commit the request's transaction, if it has one open (``AppSessions.transaction``);
    called in the worker thread the endpoint ran in, right after it returned."""
    commit = _COMMIT.get()
    if commit is not None:
        commit()


def is_reader(request: Request) -> bool:
    return bool(request.scope.get(READER))


def defer_refresh(request: Request) -> Callable[[str, dt.datetime], None] | None:
    """For ``resolve_session``: a request served as a reader writes the session's last use, when
    it is due, after its read, in a transaction of its own (None: in the request's own)."""
    if not is_reader(request):
        return None

    def later(session_id: str, now: dt.datetime) -> None:
        request.state.refresh_session = (session_id, now)

    return later


class AppSessions:
    """The application's sessions, from ``AppState``."""

    def __init__(self, state: AppState, request: Request | None = None) -> None:
        self.state = state
        self.request = request

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """One transaction per request, committed (or rolled back on any exception) before the
        response is sent: an acknowledged change and its ledger entry are saved together or
        not at all.

        A request first takes one of the application's database slots
        (``AppState.request_slots``) while waiting in the event loop, not in a worker thread.
        Its database work then runs in worker threads that never wait for capacity
        (``edc.threads.in_thread``), so the request that holds SQLite's write lock or a pooled
        connection always gets a thread to finish with; without the gate, 50 clients filled
        every thread with requests waiting for the lock or a connection.

        On SQLite a request served as a reader (``READER``) takes one of the readers' slots
        and a deferred transaction instead: it reads a snapshot beside the writer, and the
        session's last use, when due, is written afterwards in a short transaction of its
        own.

        A ``quick`` route's transaction is begun here at once, without waiting
        (``edc.db.begin_now``), and its work then runs on the event loop thread
        (``edc.threads.ON_LOOP``, where ``edc.db.runs_on_loop`` allows). On SQLite, if another
        connection holds the write lock, the request waits for it in a worker thread instead,
        and the loop goes on serving others; on PostgreSQL a row lock that is not free soon
        moves the request's work to a worker thread (``edc.threads.request_work``)."""
        state = self.state
        request = self.request
        reader = (request is not None and is_reader(request)
                  and state.reader_sessions is not None)
        quick = (request is not None and state.on_loop
                 and getattr(request.scope.get("route"), "quick", False))
        async with state.db_slot(reader=reader):
            session = state.reader_sessions() if reader else state.sessions()  # type: ignore[misc]
            on_loop = None
            if quick:
                try:
                    begin_now(session)
                except WriteLockTaken:  # another holds the write lock: wait for it off the loop
                    session = state.sessions()
                    try:
                        await in_thread(session.connection)
                    except BaseException:
                        with anyio.CancelScope(shield=True):
                            await in_thread(lambda: end_session(session, commit=False))
                        raise
                on_loop = ON_LOOP.set(OnLoop(must_wait=lock_wait_too_long,
                                             restart=session.rollback))
            committed = False

            def commit() -> None:  # where the endpoint ran, right after it (``commit_now``)
                nonlocal committed
                session.commit()
                committed = True

            token = _COMMIT.set(commit)
            try:
                try:
                    yield session
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await request_work(lambda: end_session(session, commit=False))
                    raise
                finally:
                    _COMMIT.reset(token)
                if committed and not session.in_transaction():
                    session.close()  # the commit gave the connection back: nothing left to do
                else:  # commit and close in one call (one worker-thread hop off the loop)
                    await request_work(lambda: end_session(session, commit=True))
            finally:
                if on_loop is not None:
                    ON_LOOP.reset(on_loop)
        due = getattr(request.state, "refresh_session", None) if reader and request else None
        if due is not None:
            del request.state.refresh_session  # type: ignore[union-attr]
            await self.record(lambda s: refresh_session(s, *due))

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """On SQLite the reading holds no write lock (``edc.db.read_session_factory``)."""
        with self.state.read_sessions() as session:
            yield session

    async def record(self, write: Callable[[Session], None]) -> None:
        state = self.state

        def run() -> None:
            with state.sessions() as session, session.begin():
                write(session)

        async with state.db_slot():  # like a request: waits in the event loop, writes in a thread
            await in_thread(run)


def request_sessions(request: Request) -> Sessions:
    """The dependency that provides a request's sessions (``edc.deps.get_db`` uses it)."""
    return AppSessions(request.app.state.edc, request)


def sessions_of(request: Request) -> Sessions:
    """``request_sessions`` as the application resolves it, honouring
    ``app.dependency_overrides``: for code that runs outside dependency injection."""
    provider = request.app.dependency_overrides.get(request_sessions, request_sessions)
    return provider(request)  # type: ignore[no-any-return]
