"""Typed domain errors rendered in one place: JSON for the API, a page for people, a fragment
for htmx. Refusals that must be audited (``DomainError.audit``, every PermissionDenied) are
written to the ledger in a transaction of their own, because the request's rolls back.

htmx policy for 4xx: the server answers with the error fragment and ``HX-Retarget: #messages``
so the message replaces the flash area instead of the target.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from edc.sessions import sessions_of
from studies.kernel.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    Locked,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RuleViolation,
    SignatureRefused,
    TooManyRequests,
)
from studies.kernel.events import Action
from studies.kernel.i18n import _

log = logging.getLogger("edc")


class ServerBusy(DomainError):
    """The database stayed busy longer than a request may wait (HTTP 503 with Retry-After);
    nothing of the request was written."""

    code = "busy"
    retry_after = 5

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("the server is busy; nothing was saved, please try again "
                                      "in a moment"))


STATUS: dict[type[DomainError], int] = {
    NotFound: 404, PermissionDenied: 403, NotAuthenticated: 401, Conflict: 409,
    InvalidInput: 422, RuleViolation: 422, SignatureRefused: 422, Locked: 423,
    TooManyRequests: 429, ServerBusy: 503,
}


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, invalid_input, stale")
    message: str = Field(description="for people, in Chinese and English")
    field: str | None = Field(description="the input the error is about, if any")
    clause: str | None = Field(description="the clause of GB/T 39725-2020 that refuses it")
    details: dict[str, Any] | None = Field(default=None, description=(
        "only on some errors: every field error (``errors``) of a refused save or import, "
        "the changes since the version a stale save edited (``changes_since``)"))


class ErrorOut(BaseModel):
    """The body of every error answer of the JSON API."""

    error: ErrorDetail


# What each error status of the API means, as the OpenAPI documents it.
ERROR_DOCS: dict[int, str] = {
    401: "not logged in, or the session or API token is not valid",
    403: "the permission is missing, or the session must first change its password or enrol "
         "the second factor",
    404: "something the path (or the body) names does not exist",
    409: "conflicts with the current state (a stale save: ``error.details.changes_since``, "
         "and per field both values in ``error.details.conflicts``)",
    422: "the input is not valid, or a rule refuses it (``error.details.errors``); also a "
         "refused electronic signature (wrong username, password or second factor: "
         "``error.code`` ``signature_refused``, the session stays valid)",
    423: "locked: the data (or the form version, or the account) cannot change now",
    429: "too many attempts; try again after ``Retry-After`` seconds",
    503: "the database is busy; nothing was saved; try again after ``Retry-After`` seconds",
}


def error_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """The ``responses={...}`` of these error statuses: each documents :class:`ErrorOut`."""
    return {s: {"model": ErrorOut, "description": ERROR_DOCS[s]} for s in sorted(set(statuses))}


def raises(*errors: type[DomainError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses={...}`` a route adds for what it can raise beyond what its policy, path
    and input already imply (:func:`edc.policy.documented_errors`), e.g. ``raises(Locked)``."""
    return error_responses(status_of_type(e) for e in errors)


def status_of_type(cls: type[DomainError]) -> int:
    for base in cls.__mro__:
        if base in STATUS:
            return STATUS[base]  # type: ignore[index]
    return 400


def _is_busy(exc: BaseException) -> bool:
    """The database cannot serve the request now, and the request was rolled back: SQLite's
    busy timeout, an exhausted connection pool, or PostgreSQL down, restarting or dropping the
    connection (psycopg's ``OperationalError``: refused, closed, admin shutdown, starting up)."""
    if isinstance(exc, SATimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | InterfaceError) and exc.orig is not None:
        if type(exc.orig).__module__.startswith("psycopg"):
            return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def status_of(exc: DomainError) -> int:
    return status_of_type(type(exc))


def error_body(code: str, message: str, field: str | None = None,
               clause: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, "clause": clause}}


# REDCap's API endpoint (edc/routes/redcap): its errors take REDCap's form.
REDCAP_PATH = "/api/"


def redcap_error(request: Request, status: int, message: str) -> Response:
    """An error as REDCap answers it, in the request's ``returnFormat`` (else ``format``):
    ``{"error": "…"}``, ``ERROR: …`` for CSV, ``<hash><error>…</error></hash>`` for XML —
    with this system's status code (403, 404, 409, 422, 423, …), which REDCapR reads."""
    fmt = getattr(request.state, "redcap_format", None) or "json"
    if fmt == "csv":
        return Response(f"ERROR: {message}", status_code=status,
                        media_type="text/csv; charset=utf-8")
    if fmt == "xml":
        from xml.sax.saxutils import escape

        return Response(f'<?xml version="1.0" encoding="UTF-8" ?>\n<hash>\n  <error>'
                        f"{escape(message)}</error>\n</hash>", status_code=status,
                        media_type="application/xml")
    return JSONResponse({"error": message}, status_code=status)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _record_refusal(request: Request, exc: DomainError) -> None:
    audit: Any = exc.audit
    if getattr(exc, "redirect_to", None):
        return  # a session sent to change its password or enrol TOTP first: not a refusal
    if audit is None and isinstance(exc, PermissionDenied):
        actor = getattr(request.state, "actor", None)
        audit = dict(actor=actor.username if actor else "(anonymous)", action=Action.ACCESS_DENIED,
                     entity_type="route", entity_id=f"{request.method} {request.url.path}"[:200],
                     outcome="denied", reason=exc.message[:500],
                     client=request.client.host if request.client else None)
    if audit is None:
        return
    entries = audit if isinstance(audit, list) else [audit]
    ledger = request.app.state.edc.ledger

    def write(session: Any) -> None:
        for entry in entries:
            ledger.append(session, **entry)

    await sessions_of(request).record(write)
    _observe_refusals(request, entries)


def _observe_refusals(request: Request, entries: list[dict[str, Any]]) -> None:
    """Hand the refusals to the abnormal-access rules (repeated refusals), which run with the
    next batch of read entries (``edc/jobs/reads.py``)."""
    from audit_trail.base import utcnow
    from studies.oversight.service import Access

    buffer = request.app.state.edc.reads
    for entry in entries:
        if entry.get("outcome") == "denied":
            buffer.refused(Access(kind="refusal", username=str(entry.get("actor") or ""),
                                  at=utcnow(), client=entry.get("client"),
                                  study=entry.get("study")))


def render(request: Request, status: int, code: str, message: str, field: str | None = None,
           clause: str | None = None) -> Response:
    if request.url.path == REDCAP_PATH:
        return redcap_error(request, status, message)
    if wants_json(request):
        return JSONResponse(error_body(code, message, field, clause), status_code=status)
    if status == 401 and getattr(request.state, "actor", None) is None:
        from edc.web.layout import redirect

        resp = redirect(request, "/login", message)  # the reason, shown on the login page
        resp.delete_cookie("edc_session")
        return resp
    # (a 401 with a valid session is a signature's wrong password or code: the page says so
    # and the session is kept)
    from edc.web.layout import error_page  # late: pages import this module

    return error_page(request, status, message, field, clause)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        try:
            await _record_refusal(request, exc)
        except ServerBusy as busy:  # a refusal that cannot be recorded is not given
            exc = busy
        target = getattr(exc, "redirect_to", None)
        if target and not wants_json(request):
            from edc.web.layout import redirect

            return redirect(request, target, exc.message)
        resp = render(request, status_of(exc), exc.code, exc.message, exc.field, exc.clause)
        details = getattr(exc, "details", None)
        # e.g. every field error, or the changes since (REDCap's form has no details)
        if details and wants_json(request) and request.url.path != REDCAP_PATH:
            body = error_body(exc.code, exc.message, exc.field, exc.clause)
            body["error"]["details"] = details
            resp = JSONResponse(body, status_code=status_of(exc))
        if isinstance(exc, TooManyRequests | ServerBusy):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("body", "query", "path", "form")]
        field = ".".join(loc) or None
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            msg, field = _("request body is not valid JSON"), None
        message = f"{field}: {msg}" if field else msg
        return render(request, 422, "invalid_input", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                413: "too_large"}.get(
            exc.status_code, "http_error")
        return render(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(ValidationError)
    async def _model(request: Request, exc: ValidationError) -> Response:
        """Input a route checked itself with a schema (a page's form): 422 naming the field."""
        errs = exc.errors()
        field = ".".join(str(x) for x in errs[0]["loc"]) or None if errs else None
        msg = errs[0]["msg"] if errs else "invalid input"
        return render(request, 422, "invalid_input", f"{field}: {msg}" if field else msg, field)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(SATimeoutError)
    async def _database(request: Request, exc: Exception) -> Response:
        if _is_busy(exc):  # rolled back, so: busy, nothing saved, try again
            log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
            return await _domain(request, ServerBusy())
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render(request, 500, "internal", _("internal error; it has been logged"))
