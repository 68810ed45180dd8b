"""The FastAPI application: middleware (security headers, body limit), routes, static assets."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import anyio
from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from pydantic import BaseModel
from starlette.requests import cookie_parser
from starlette.routing import Host, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from edc import errors
from edc.db import NeedsWriter
from edc.policy import public
from edc.routes import (
    accounts,
    audit,
    consent,
    entry,
    ethics,
    extracts,
    forms,
    jobs,
    locks,
    oversight,
    randomisation,
    redcap,
    registry,
    retention,
    subjects,
)
from edc.routing import Route
from edc.sessions import READER
from edc.state import AppState
from edc.web import timefmt
from edc.web.assets import install_assets
from edc.web.layout import LANGUAGE_COOKIE
from studies.kernel import i18n
from studies.kernel.i18n import _

log = logging.getLogger("edc.app")

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
NO_STORE = (b"cache-control", b"no-store")  # unless the response says otherwise (assets)


class SecurityMiddleware:
    """Adds security headers to every response, refuses bodies over the size limit (413) and
    sets the request's language (``studies.kernel.i18n``)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string") or b""
        if "\x00" in scope.get("path", "") or b"\x00" in query or b"%00" in query.lower():
            await _nul_refused(send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _too_large(scope, send, self.max_body)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
            return msg

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                own = list(msg.get("headers", []))
                cached = any(k.lower() == b"cache-control" for k, _x in own)
                msg["headers"] = own + SECURITY_HEADERS + ([] if cached else [NO_STORE])
            await send(msg)

        # the language of the pages and messages: the switch's cookie, else Accept-Language
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        token = i18n.set_language(i18n.choose(cookies.get(LANGUAGE_COOKIE),
                                              headers.get(b"accept-language", b"").decode(
                                                  "latin-1")))
        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            await _too_large(scope, send, self.max_body)
        finally:
            i18n.reset_language(token)


class ReadersFirstMiddleware:
    """On SQLite, serves a GET or HEAD (without an API token, whose every use is a ledger
    entry) as a reader: a deferred transaction beside the one writer, so page views neither
    wait for the write lock nor hold it (``edc.sessions.READER``). A reader that tries to
    write (an audited download, a refusal, …) is stopped before the statement runs
    (``edc.db.NeedsWriter``), rolled back — nothing was written, nothing was sent — and served
    again from the start as a writer."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (not self.enabled or scope["type"] != "http"
                or scope["method"] not in ("GET", "HEAD")
                or any(k == b"authorization" for k, _x in scope.get("headers") or [])):
            await self.app(scope, receive, send)
            return
        state = dict(scope.get("state") or {})
        started = False

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            started = True
            await send(msg)

        try:
            await self.app({**scope, READER: True, "state": dict(state)}, receive, tracking_send)
        except NeedsWriter as exc:
            if started:
                raise
            log.debug("%s %s served again as a writer (it writes: %s)", scope["method"],
                      scope.get("path"), exc)
            await self.app({**scope, "state": state}, _empty_body(receive), send)


def _empty_body(receive: Receive) -> Receive:
    """A GET's (empty) body once more, then the client's own messages (a disconnect)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return again


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    body = (b'{"error":{"code":"too_large","message":"request body exceeds %d bytes",'
            b'"field":null,"clause":null}}' % limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), NO_STORE]
                + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


async def _nul_refused(send: Send) -> None:
    """A NUL character in the path or query string: 422 before any route or database sees it
    (PostgreSQL cannot store one; the refusal would otherwise be recorded with it)."""
    body = json.dumps({"error": {
        "code": "invalid_input",
        "message": _("the address must not contain a NUL character (U+0000)"),
        "field": None, "clause": None}}, ensure_ascii=False)
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json")] + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body.encode()})


class RouteMemo(fastapi_routing.APIRouter):
    """The application's top-level router, remembering for each (method, path) which of its
    routes matched first, so a repeated request is matched against that route alone instead
    of every route registered before it (~0.2 ms of CPU per request with this many routers,
    docs/benchmarks-entry.md).

    The first route that matches a request fully depends only on its method and path (no
    route here matches on the host), and routes are only ever added at the end, so the one
    remembered is the one the full scan would find (there too a full match wins over an
    earlier partial one); the memo is keyed by the number of routes as well. Without a full
    match (404, 405, a redirect) FastAPI's own scan answers. The memo holds at most ``SIZE``
    paths and starts afresh when full."""

    SIZE = 4096

    def enable_memo(self) -> None:
        self._memo: dict[tuple[int, str, str, str], int] = {}
        self.middleware_stack = self.app  # Router.__init__ bound the class's own ``app``

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        memo: dict[tuple[int, str, str, str], int] | None = getattr(self, "_memo", None)
        if memo is None or scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        routes = self.routes
        key = (len(routes), scope["method"], scope.get("root_path", ""), scope["path"])
        index = memo.get(key)
        candidates = range(len(routes)) if index is None else (index,)
        for i in candidates:
            route = routes[i]
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                if index is None:
                    if len(memo) >= self.SIZE:
                        memo.clear()
                    memo[key] = i
                # what APIRouter.app does with the first full match
                fastapi_routing._apply_router_form_limits(scope, self.form_limits)
                scope.setdefault("router", self)
                fastapi_routing._update_scope(scope, child_scope)
                fastapi_routing._route_selected(
                    scope=scope, path=getattr(route, "path_format", None),
                    mount=isinstance(route, fastapi_routing.routing.Mount))
                await route.handle(scope, receive, send)
                return
        # no full match (a 405, a redirect, a 404), or the remembered route did not match:
        # FastAPI's own scan decides
        await super().app(scope, receive, send)


def memoise_routes(app: FastAPI) -> None:
    """Match repeated requests with ``RouteMemo`` (none of the routes matches on the host)."""
    if any(isinstance(r, Host) for r in app.router.routes):
        return
    app.router.__class__ = RouteMemo
    assert isinstance(app.router, RouteMemo)
    app.router.enable_memo()


class ServerOptions(TypedDict):
    proxy_headers: bool
    server_header: bool


# How uvicorn serves the app (``edc serve`` and the tests' real server): uvicorn's own proxy
# headers stay off — it would trust 127.0.0.1 by default; the app honours forwarded headers
# only from EDC_TRUSTED_PROXIES (``create_app``).
SERVER_OPTIONS = ServerOptions(proxy_headers=False, server_header=False)


class HealthOut(BaseModel):
    status: str


# Every route of the application, API and pages of each domain. Where two paths can match the
# same request the first registered wins, so a literal path stays before a parameterised one
# (each pair of that kind is inside one module: /studies/new before /studies/{study}).
ROUTERS = [
    accounts.api.router, audit.api.router, accounts.pages.router, audit.pages.router,
    registry.api.router, ethics.api.router, consent.api.router, forms.api.router,
    registry.pages.router, registry.owner.router, forms.pages.router, ethics.pages.router,
    consent.pages.router,
    subjects.api.router, subjects.pages.router, subjects.requests.router,
    extracts.api.router, extracts.pages.router,
    entry.api.router, entry.pages.router, entry.exports.router,
    locks.api.router, randomisation.api.router, locks.pages.router, randomisation.pages.router,
    retention.api.router, retention.pages.router,
    oversight.pages.router, jobs.api.router, jobs.pages.router,
    redcap.api.router,
]


def start_jobs(app: FastAPI, state: AppState) -> None:
    """Run a job runner thread inside this web process (``edc serve`` calls this; tests run
    jobs directly): extract builds, checkpoint rounds, sweeps, scheduled backups. Off when
    EDC_SERVE_JOBS is false (``edc worker`` processes run them). At shutdown the runner signs
    a last checkpoint, so the last entries are signed and witnessed."""
    from edc.jobs.runner import Runner, RunnerThread

    if not state.settings.serve_jobs:
        return
    runner = Runner(state)
    thread = RunnerThread(runner)
    app.state.job_runner = thread
    thread.start()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as value:
            yield value
        thread.stop()
        await anyio.to_thread.run_sync(runner.last_round)

    app.router.lifespan_context = lifespan


def start_read_audit_worker(app: FastAPI, state: AppState) -> None:
    """Start the thread that writes the buffered views of clinical data to the ledger every
    EDC_READ_AUDIT_FLUSH_SECONDS (``edc serve`` calls this), and a last time at shutdown."""
    from edc.jobs.reads import ReadAuditWorker

    worker = ReadAuditWorker(state.reads, state.sessions, state.ledger,
                             interval=state.settings.read_audit_flush_seconds)
    app.state.read_audit_worker = worker
    worker.start()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as value:
            yield value
        await anyio.to_thread.run_sync(worker.stop)

    app.router.lifespan_context = lifespan


def freeze_startup_objects() -> None:
    """Once a server process has built its application: move what start-up made (modules,
    routes, mappers, caches — alive as long as the process) out of the garbage collector's
    reach, so its full collections no longer walk them. Those pauses fell on whichever
    requests were running: the entry benchmark's p99 at 10 clients halved
    (docs/benchmarks-entry.md)."""
    gc.collect()
    gc.freeze()


def factory() -> FastAPI:
    """The application as each of ``edc serve --workers N``'s processes builds it (uvicorn's
    app factory): settings from the environment, its own engine and pool, its own job runner
    unless EDC_SERVE_JOBS is false."""
    from edc.settings import Settings
    from edc.state import build_state

    state = build_state(Settings())
    app = create_app(state)
    # before the job runner's checkpointer: at shutdown the last views are written, then signed
    start_read_audit_worker(app, state)
    start_jobs(app, state)
    freeze_startup_objects()
    return app


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(title="EDC — GB/T 39725-2020 §11.3", version="0.1.0",
                  docs_url=None, openapi_url="/api/v1/openapi.json", redoc_url=None)
    app.router.route_class = Route  # the app's own routes (health, assets) too
    timefmt.set_zone(state.settings.display_timezone)
    app.state.edc = state
    errors.install(app)
    readers = getattr(state, "reader_sessions", None) is not None  # SQLite
    app.add_middleware(ReadersFirstMiddleware, enabled=readers)
    app.add_middleware(SecurityMiddleware, max_body=state.settings.max_body_bytes)
    if state.settings.trusted_proxies.strip():
        # Outermost: the client address every later layer (login limits, the hospital-network
        # test, the ledger) sees is the one the trusted proxy forwarded; a forwarded header
        # from anyone else is ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=state.settings.proxy_hosts)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/api/v1/health", response_model=HealthOut, dependencies=[public()])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    install_assets(app, state)
    memoise_routes(app)
    return app


