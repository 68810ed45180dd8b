"""FastAPI dependencies: one transaction per request, the acting user, the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from audit_trail.base import utcnow
from audit_trail.service import Ledger
from edc.jobs.reads import ReadEvent
from edc.sessions import defer_refresh, sessions_of
from edc.state import AppState
from edc.threads import request_work
from edc.web.csrf import verify_api_request
from studies.accounts import tokens
from studies.accounts.config import AuthConfig
from studies.accounts.service import resolve_session
from studies.kernel.actor import Actor
from studies.kernel.errors import NotAuthenticated
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.reads import ReadNote

SESSION_COOKIE = "edc_session"


# Dependencies that only hand over what the application holds are ``async``: FastAPI runs a
# plain ``def`` dependency in a worker thread, a hop that cost more than the work
# (docs/benchmarks-entry.md). Anything that touches the database stays a ``def``.
async def get_state(request: Request) -> AppState:
    return request.app.state.edc  # type: ignore[no-any-return]


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request (``edc.sessions.AppSessions.transaction``), committed or
    rolled back before the response is sent. The sessions come from ``request_sessions`` as
    ``sessions_of`` resolves it (honouring ``app.dependency_overrides``), called here rather
    than as a dependency of its own: FastAPI would run that plain function in a worker
    thread."""
    async with sessions_of(request).transaction() as session:
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


# The dependencies below read the application's state from the request rather than through
# ``StateDep``: FastAPI's solver costs per node of a route's dependency tree on every request
# (each node's cache key and parameters), and ``current_actor`` sits in every route's tree
# several times over.
async def get_ledger(request: Request) -> Ledger:
    return request.app.state.edc.ledger  # type: ignore[no-any-return]


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def get_auth(request: Request) -> AuthConfig:
    return request.app.state.edc.auth  # type: ignore[no-any-return]


AuthDep = Annotated[AuthConfig, Depends(get_auth)]


async def current_actor(request: Request, session: SessionDep) -> Actor:
    """The actor of the request: an API token (``Authorization: Bearer``, under /api only)
    or the session cookie. ``async``, its database read through ``edc.threads.request_work``:
    on the event loop for a quick request, else in a worker thread."""
    return await request_work(_resolve_actor, request, session)


def _resolve_actor(request: Request, session: Session) -> Actor:
    state: AppState = request.app.state.edc
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and request.url.path.startswith("/api/"):
        actor = tokens.authenticate(session, state.ledger, token=auth[7:].strip(),
                                    client=client_address(request), method=request.method,
                                    path=request.url.path)
        request.state.actor = actor
        return actor
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated(_("please log in"))
    actor = resolve_session(session, token=token, client=client_address(request),
                            config=state.auth, defer_refresh=defer_refresh(request))
    request.state.actor = actor
    if request.url.path.startswith("/api/"):
        verify_api_request(request)
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def audited_read(action: Action) -> Any:
    """A route that shows clinical data: each successful view is one ledger entry ``action``
    (who, the study / subject / form of the path or the list's study, when, the client),
    buffered off the request path (``edc/jobs/reads.py``). The route may take the
    ``ReadNote`` this yields (``note: Annotated[ReadNote, audited_read(...)]``) and pass it to
    the reading function, which names the level-5 items it showed unmasked (then the entry is
    ``read.unmasked``)."""

    # async: it touches no database (the buffer's lock is held for an append), so FastAPI
    # runs it without the two worker-thread hops of a generator dependency
    async def _audited(request: Request, actor: CurrentActor) -> AsyncIterator[ReadNote]:
        note = ReadNote()
        yield note  # what follows runs only when the handler succeeded
        p = dict(request.path_params)
        if "code" in p:  # /studies/{study}/subjects/{code}
            p["subject"] = p.pop("code")
        parts = [p[k] for k in ("subject", "event", "form", "item") if k in p]
        kind = "form" if "form" in p else "subject" if "subject" in p else "study"
        what = f"{request.method} {request.url.path}"
        if note.unmasked:
            what += " level-5 shown: " + ",".join(sorted(note.unmasked))
        request.app.state.edc.reads.record(ReadEvent(
            action=Action.READ_UNMASKED if note.unmasked else action, username=actor.username,
            entity_type=kind, entity_id="/".join(parts) or p.get("study", request.url.path),
            at=utcnow(), study=p.get("study"), subject=p.get("subject"),
            client=client_address(request), what=what))

    return Depends(_audited, scope="function")


def read_stream(request: Request, chunks: Callable[[Session], Iterator[bytes]]
                ) -> Iterator[bytes]:
    """The chunks of a streamed download, read in a read-only session of its own: the request's
    transaction (with the download's ledger entry) has committed before streaming begins, and on
    SQLite the reading holds no write lock."""
    with sessions_of(request).reading() as session:
        yield from chunks(session)
