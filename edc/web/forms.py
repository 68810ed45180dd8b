"""Errors at the field, input kept: a refused form POST re-renders its form (422, or the
error's status) with what was typed and each message beside its field, labelled, under a
summary at the top that names each field by its label.

A page handler calls :func:`submit` with the domain call (in a savepoint, so a refusal
leaves nothing written) and the function that renders the form. While the form renders, the
widgets (:mod:`edc.web.widgets`) read the typed values and the errors from :func:`refill`
and record each field's label; :func:`edc.web.layout.page` puts the summary on top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from studies.kernel.errors import DomainError, InvalidInput, Locked, RuleViolation
from studies.kernel.i18n import Label

# Errors a person can correct by changing the form; others (not found, permission) keep
# their own page.
CORRECTABLE: tuple[type[DomainError], ...] = (InvalidInput, RuleViolation, Locked)


@dataclass
class Refill:
    values: dict[str, list[str]]
    errors: dict[str, str]
    labels: dict[str, Label] = field(default_factory=dict)
    clause: str | None = None

    def value(self, name: str) -> str:
        got = self.values.get(name) or [""]
        return got[0]

    def chosen(self, name: str) -> list[str]:
        return self.values.get(name) or []


_current: ContextVar[Refill | None] = ContextVar("edc_refill", default=None)


def refill() -> Refill | None:
    """The refused form being re-rendered, if any."""
    return _current.get()


def errors_of(exc: DomainError) -> dict[str, str]:
    """Each field's message: ``details.errors`` where the error lists them, else its one
    field (or the whole form, key ``""``)."""
    listed = (getattr(exc, "details", None) or {}).get("errors")
    if isinstance(listed, dict) and listed:
        return {str(k): str(v) for k, v in listed.items()}
    return {exc.field or "": exc.message}


@contextmanager
def refilling(posted: FormData | dict[str, Any], errors: dict[str, str],
              clause: str | None = None) -> Iterator[Refill]:
    if isinstance(posted, FormData):
        values = {k: [str(v) for v in posted.getlist(k)] for k in posted.keys()
                  if k != "csrf_token"}
    else:
        values = {k: [str(x) for x in v] if isinstance(v, list) else [str(v)]
                  for k, v in posted.items() if v is not None}
    state = Refill(values=values, errors=errors, clause=clause)
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)


def submit(session: Session, posted: FormData | dict[str, Any], act: Callable[[], Response],
           form: Callable[[], Response], *, status: int | None = None,
           renamed: dict[str, str] | None = None) -> Response:
    """Run ``act`` (the domain call and its redirect) in a savepoint; on a correctable refusal
    roll the savepoint back and answer with ``form()`` re-rendered with the input and the
    errors (``renamed``: a domain error's field → the form's name for it). An audited refusal
    still goes to the error handler (which records it)."""
    from edc.errors import status_of

    try:
        with session.begin_nested():
            return act()
    except CORRECTABLE as exc:
        if exc.audit is not None:
            raise
        errors = {(renamed or {}).get(k, k): v for k, v in errors_of(exc).items()}
        with refilling(posted, errors, exc.clause):
            resp = form()
        resp.status_code = status or status_of(exc)
        return resp


def gather(*checks: Callable[[], Any]) -> list[Any]:
    """Run every check and report all their input errors at once (one InvalidInput whose
    ``details.errors`` holds each field's message); otherwise their results."""
    results: list[Any] = []
    errors: dict[str, str] = {}
    clause: str | None = None
    for check in checks:
        try:
            results.append(check())
        except InvalidInput as exc:
            for k, v in errors_of(exc).items():
                errors.setdefault(k, v)
            clause = clause or exc.clause
            results.append(None)
    if errors:
        field, message = next(iter(errors.items()))
        failed = InvalidInput(message, field=field or None, clause=clause)
        failed.details = {"errors": errors}  # type: ignore[attr-defined]
        raise failed
    return results
