"""Deny by default: every route declares its policy, and a test fails for a route without one.

Use one of these in a route's ``dependencies=[...]``:

- ``public()``            — no login (login page, health, static assets);
- ``authenticated()``     — any logged-in user, for their own things (home, password, logout);
- ``requires(Perm.X)``    — a permission from ``studies.kernel.roles``. When the path has a
  ``{study}`` parameter the permission must be held for that study (or for every study).

A refusal is ``PermissionDenied``, which ``edc/errors.py`` records in the ledger.
``policy_of(route)`` returns the declared policy; ``docs/permissions.md`` is rendered from it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from edc.deps import CurrentActor
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


def _mark(dep: Any, policy: str) -> Any:
    dep.edc_policy = policy
    return Depends(dep)


def public() -> Any:
    def _public() -> None:
        return None

    return _mark(_public, PUBLIC)


def authenticated(*, while_pending: bool = False) -> Any:
    """Any logged-in user. A session that must first change its password or enrol the second
    factor reaches only the routes marked ``while_pending`` (password, enrolment, logout)."""

    def _authenticated(actor: CurrentActor) -> None:
        if not while_pending:
            _refuse_pending(actor)

    return _mark(_authenticated, AUTHENTICATED)


def requires(perm: Perm) -> Any:
    def _requires(request: Request, actor: CurrentActor) -> None:
        _refuse_pending(actor)
        require(actor, perm, study=request.path_params.get("study"),
                site=request.path_params.get("site"))

    return _mark(_requires, perm.value)


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
