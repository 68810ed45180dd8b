"""FastAPI dependencies: one transaction per request, the acting user, the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc.state import AppState
from studies.accounts import tokens
from studies.accounts.config import AuthConfig
from studies.accounts.service import resolve_session
from studies.kernel.actor import Actor
from studies.kernel.errors import NotAuthenticated

SESSION_COOKIE = "edc_session"


def get_state(request: Request) -> AppState:
    return request.app.state.edc  # type: ignore[no-any-return]


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request, committed (or rolled back on any exception) before the
    response is sent: an acknowledged change and its ledger entry are saved together or not
    at all.

    A request first takes one of the application's database slots (``AppState.request_slots``)
    while waiting in the event loop, not in a worker thread. Its database work then runs in
    worker threads, of which there are more than slots, so the request that holds SQLite's
    write lock or a pooled connection always gets a thread to finish with; without the gate,
    50 clients filled every thread with requests waiting for the lock or a connection."""
    override = getattr(request.app.state, "session_override", None)
    if override is not None:  # tests: the test's session; a savepoint stands in for the request
        savepoint = override.begin_nested()
        try:
            yield override
            override.flush()
            savepoint.commit()
        except BaseException:
            savepoint.rollback()
            raise
        return
    state = get_state(request)
    async with state.db_slot():
        session = state.sessions()
        try:
            yield session
            await _in_thread(session.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _in_thread(session.rollback)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await _in_thread(session.close)


async def _in_thread(fn: Callable[[], object]) -> None:
    # Its own limiter, as FastAPI does for a dependency's exit: a commit never waits for a
    # worker thread while it holds the database.
    await anyio.to_thread.run_sync(fn, limiter=anyio.CapacityLimiter(1))


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def get_ledger(state: StateDep) -> Ledger:
    return state.ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def get_auth(state: StateDep) -> AuthConfig:
    return state.auth


AuthDep = Annotated[AuthConfig, Depends(get_auth)]


def current_actor(request: Request, session: SessionDep, state: StateDep,
                  ledger: LedgerDep) -> Actor:
    """The actor of the request: an API token (``Authorization: Bearer``, under /api only)
    or the session cookie."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and request.url.path.startswith("/api/"):
        actor = tokens.authenticate(session, ledger, token=auth[7:].strip(),
                                    client=client_address(request), method=request.method,
                                    path=request.url.path)
        request.state.actor = actor
        return actor
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("please log in / 请登录")
    actor = resolve_session(session, token=token, client=client_address(request),
                            config=state.auth)
    request.state.actor = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def read_stream(request: Request, chunks: Callable[[Session], Iterator[bytes]]
                ) -> Iterator[bytes]:
    """The chunks of a streamed download, read in a read-only session of its own: the request's
    transaction (with the download's ledger entry) has committed before streaming begins, and on
    SQLite the reading holds no write lock. (Tests: the test's session.)"""
    override = getattr(request.app.state, "session_override", None)
    if override is not None:
        yield from chunks(override)
        return
    with get_state(request).read_sessions() as session:
        yield from chunks(session)
