"""Deny by default: every route declares its policy, and a test fails for a route without one.

Use one of these in a route's ``dependencies=[...]``:

- ``public()``            — no login (login page, health, static assets);
- ``authenticated()``     — any logged-in user, for their own things (home, password, logout);
- ``token_in_body(dep)``  — an API token in the form body (REDCap's API), checked by ``dep``;
- ``requires(Perm.X)``    — a permission from ``studies.kernel.roles``. When the path has a
  ``{study}`` parameter the permission must be held for that study (or for every study).

A refusal is ``PermissionDenied``, which ``edc/errors.py`` records in the ledger.
``policy_of(route)`` returns the declared policy; ``docs/permissions.md`` is rendered from it.

The error answers a JSON API route documents in the OpenAPI are decided here, in one place,
from its policy, its path and its input (:func:`documented_errors`); every API module makes its
router with :class:`ApiRouter`, which adds them to each route. A route adds what else it can
raise with ``responses=raises(Locked)`` (``edc.errors.raises``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.utils import get_dependant, get_flat_params
from fastapi.routing import APIRoute

from edc.deps import CurrentActor
from edc.errors import error_responses
from edc.routing import Route
from studies.kernel.actor import (
    PENDING_PASSWORD,
    PENDING_SECOND_FACTOR,
    Actor,
    refuse_pending,
    require,
)
from studies.kernel.errors import PermissionDenied
from studies.kernel.roles import Perm

PUBLIC = "public"
AUTHENTICATED = "authenticated"


# The policy checks below look only at the actor, so they are ``async`` (no worker-thread hop
# per request, see edc/deps.py); ``current_actor``, which reads the database, runs in a thread.
def _mark(dep: Any, policy: str) -> Any:
    dep.edc_policy = policy
    return Depends(dep)


def public() -> Any:
    async def _public() -> None:
        return None

    return _mark(_public, PUBLIC)


def authenticated(*, while_pending: bool = False) -> Any:
    """Any logged-in user. A session that must first change its password or enrol the second
    factor reaches only the routes marked ``while_pending`` (password, enrolment, logout)."""

    async def _authenticated(actor: CurrentActor) -> None:
        if not while_pending:
            _refuse_pending(actor)

    _authenticated.edc_while_pending = while_pending  # type: ignore[attr-defined]
    return _mark(_authenticated, AUTHENTICATED)


def requires(perm: Perm) -> Any:
    async def _requires(request: Request, actor: CurrentActor) -> None:
        _refuse_pending(actor)
        require(actor, perm, study=request.path_params.get("study"),
                site=request.path_params.get("site"))

    return _mark(_requires, perm.value)


def token_in_body(dep: Callable[..., Any]) -> Any:
    """A route whose API token comes in its form body, as REDCap's API sends it (``POST /api/``
    with ``token=…``): ``dep`` authenticates it (an unknown, expired or revoked token is
    refused and audited). Any token holder reaches the route; the domain checks the
    permission of each thing asked for."""
    return _mark(dep, AUTHENTICATED)


PENDING_PAGES = {PENDING_PASSWORD: "/account/password",
                 PENDING_SECOND_FACTOR: "/account/second-factor"}


def _refuse_pending(actor: Actor) -> None:
    """A session that must first change its password or enrol the second factor: pages
    redirect there, the API answers 403 saying so."""
    if actor.pending:
        try:
            refuse_pending(actor)
        except PermissionDenied as exc:
            exc.redirect_to = PENDING_PAGES[actor.pending]  # type: ignore[attr-defined]
            raise


def policy_of(route: APIRoute) -> str | None:
    """The policy a route declares, or None (which the route-table test refuses)."""
    found = [getattr(d.dependency, "edc_policy", None) for d in route.dependencies]
    found = [p for p in found if p]
    return found[0] if len(found) == 1 else None


def iter_routes(routes: list[Any]) -> Any:
    """Every APIRoute of an app, looking inside included routers; other routes as they are."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from iter_routes(list(inner.routes))
        else:
            yield route


# ---- the error answers a route documents ------------------------------------------------------

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def documented_errors(dependencies: Sequence[Any], *, path: str, methods: Iterable[str],
                      takes_input: bool) -> set[int]:
    """The error statuses a route can answer, from its policy, path and input:

    - not public: 401 (no valid session or token) and 503 (database busy);
    - ``requires(...)``, or ``authenticated()`` (a session that must first change its password
      or enrol the second factor), or any write not public (the CSRF check of a request made
      with the session cookie, ``edc.web.csrf.verify_api_request``): 403;
    - a parameter in the path: 404;
    - input (a body, query or path parameters): 422; and, not public, a write (POST, PUT,
      PATCH, DELETE) with input: 409.

    What a route raises beyond these (423 Locked, 429, …) it adds with ``edc.errors.raises``.
    """
    found = [getattr(d.dependency, "edc_policy", None) for d in dependencies]
    policies = [(p, d.dependency) for p, d in zip(found, dependencies, strict=True) if p]
    statuses: set[int] = set()
    public_only = all(p == PUBLIC for p, _ in policies)
    for policy, dep in policies:
        if policy == PUBLIC:
            continue
        statuses |= {401, 503}
        if not getattr(dep, "edc_while_pending", False) or WRITES & set(methods):
            statuses.add(403)  # a write: also the CSRF check of a session-cookie request
    if "{" in path:
        statuses.add(404)
    if takes_input:
        statuses.add(422)
        if WRITES & set(methods) and not public_only:
            statuses.add(409)
    return statuses


def _takes_input(path: str, endpoint: Callable[..., Any]) -> bool:
    """Whether FastAPI validates input for this endpoint (path, query, header or body)."""
    dependant = get_dependant(path=path, call=endpoint)
    if get_flat_params(dependant):
        return True
    todo = [dependant]
    while todo:
        d = todo.pop()
        if d.body_params:
            return True
        todo.extend(d.dependencies)
    return False


class ApiRouter(APIRouter):
    """The JSON API's router: every route documents the error answers its policy, path and
    input imply (:func:`documented_errors`) with the error body ``edc.errors.ErrorOut``, in
    addition to the ``responses`` it declares."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(route_class=Route, **kwargs)  # edc.routing: one worker-thread hop

    def add_api_route(self, path: str, endpoint: Callable[..., Any],
                      **kwargs: Any) -> None:
        full = self.prefix + path
        statuses = documented_errors(
            [*self.dependencies, *(kwargs.get("dependencies") or [])], path=full,
            methods=kwargs.get("methods") or ["GET"], takes_input=_takes_input(full, endpoint))
        kwargs["responses"] = {**error_responses(statuses), **(kwargs.get("responses") or {})}
        super().add_api_route(path, endpoint, **kwargs)


def attachment(*media_types: str, description: str = "the file, as an attachment"
             ) -> dict[int | str, dict[str, Any]]:
    """The ``responses={...}`` of a file or stream download: its media types (the errors stay
    JSON)."""
    return {200: {"description": description, "content": {m: {} for m in media_types}}}
