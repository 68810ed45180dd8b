"""The FastAPI application: middleware (security headers, body limit), routes, static assets."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edc import errors
from edc.policy import public
from edc.routes import (
    accounts,
    audit,
    consent,
    entry,
    ethics,
    extracts,
    forms,
    locks,
    randomisation,
    registry,
    subjects,
)
from edc.state import AppState
from edc.web import timefmt
from edc.web.assets import install_assets

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
    """Adds security headers to every response and refuses bodies over the size limit (413)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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
                cached = any(k.lower() == b"cache-control" for k, _ in own)
                msg["headers"] = own + SECURITY_HEADERS + ([] if cached else [NO_STORE])
            await send(msg)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLarge:
            await _too_large(scope, send, self.max_body)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    body = (b'{"error":{"code":"too_large","message":"request body exceeds %d bytes",'
            b'"field":null,"clause":null}}' % limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), NO_STORE]
                + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})


class HealthOut(BaseModel):
    status: str


# Every route of the application, API and pages of each domain. Where two paths can match the
# same request the first registered wins, so a literal path stays before a parameterised one
# (each pair of that kind is inside one module: /studies/new before /studies/{study}).
ROUTERS = [
    accounts.api.router, audit.api.router, accounts.pages.router, audit.pages.router,
    registry.api.router, ethics.api.router, consent.api.router, forms.api.router,
    registry.pages.router, forms.pages.router, ethics.pages.router, consent.pages.router,
    subjects.api.router, subjects.pages.router,
    extracts.api.router, extracts.pages.router,
    entry.api.router, entry.pages.router,
    locks.api.router, randomisation.api.router, locks.pages.router, randomisation.pages.router,
]


def start_extract_worker(app: FastAPI, state: AppState) -> None:
    """Start the background extract builder (``edc serve`` calls this; tests build directly).
    Off when EDC_EXTRACT_WORKER is false."""
    from edc.jobs.extracts import BuildWorker
    from studies.extracts.build import BuildKeys

    if not state.settings.extract_worker:
        return
    keys = BuildKeys(deid_key=state.keys.deid_key, signing_key=state.keys.signing_key,
                     code_index=state.keys.code_index_keys())
    worker = BuildWorker(state.sessions, state.ledger, keys=keys,
                         out_dir=state.settings.extract_dir)
    app.state.extract_worker = worker
    worker.start()


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(title="EDC — GB/T 39725-2020 §11.3", version="0.1.0",
                  docs_url=None, openapi_url="/api/v1/openapi.json", redoc_url=None)
    timefmt.set_zone(state.settings.display_timezone)
    app.state.edc = state
    errors.install(app)
    app.add_middleware(SecurityMiddleware, max_body=state.settings.max_body_bytes)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/api/v1/health", response_model=HealthOut, dependencies=[public()])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    install_assets(app, state)
    return app


