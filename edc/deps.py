"""FastAPI dependencies: one transaction per request, the acting user, the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc.state import AppState
from studies.accounts import tokens
from studies.accounts.config import AuthConfig
from studies.accounts.service import Actor, resolve_session
from studies.errors import NotAuthenticated

SESSION_COOKIE = "edc_session"


def get_state(request: Request) -> AppState:
    return request.app.state.edc  # type: ignore[no-any-return]


def get_db(request: Request) -> Iterator[Session]:
    """Commit after the handler, roll back on any exception: a data change and its ledger
    entry are saved together or not at all."""
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
    session = get_state(request).sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_db)]


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


def commit_early(request: Request, session: Session) -> None:
    """Commit what the request has written so far — e.g. the ledger entry of an export — before
    a long streamed response, so that the ledger head's lock is not held while it streams.
    (Tests: the test's session stays in its transaction.)"""
    if getattr(request.app.state, "session_override", None) is not None:
        session.flush()
        return
    session.commit()
