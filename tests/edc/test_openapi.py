"""The OpenAPI at /api/v1/openapi.json documents every JSON API route: what it answers (a
pydantic ``response_model``, or for a file or stream download its ``response_class`` and media
type) and the error answers its policy implies (401 when not public, 403 for ``requires``), each
with the error body ``ErrorOut``."""

from __future__ import annotations

import typing
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from edc.app import create_app
from edc.errors import ERROR_DOCS
from edc.policy import AUTHENTICATED, PUBLIC, documented_errors, iter_routes, policy_of
from edc.state import AppState

ERROR_REF = "#/components/schemas/ErrorOut"


def _is_model(t: Any) -> bool:
    """A pydantic model, or a list of one."""
    if typing.get_origin(t) is list:
        return _is_model(typing.get_args(t)[0])
    return isinstance(t, type) and issubclass(t, BaseModel)


def _api_routes(state: AppState) -> tuple[list[APIRoute], dict[str, Any]]:
    app = create_app(state)
    routes = [r for r in iter_routes(app.routes)
              if isinstance(r, APIRoute) and r.path.startswith("/api/v1/")]
    return routes, app.openapi()


def _operations(route: APIRoute, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m} {route.path}", spec["paths"][route.path][m.lower()])
            for m in sorted(route.methods)]


def test_every_api_route_documents_what_it_answers(state: AppState) -> None:
    routes, spec = _api_routes(state)
    bad = []
    for route in routes:
        if _is_model(route.response_model):
            continue
        download = (not isinstance(route.response_class, DefaultPlaceholder)
                    and issubclass(route.response_class, Response)
                    and not issubclass(route.response_class, JSONResponse))
        for name, op in _operations(route, spec):
            media = set(op["responses"].get("200", {}).get("content", {}))
            if not (download and media and media != {"application/json"}):
                bad.append(f"{name}: no response_model (nor a download's response_class and "
                           f"media type); response_model is {route.response_model!r}")
    assert bad == []
    assert len(routes) > 90  # the walk reaches every domain's router


def test_every_api_route_documents_the_errors_of_its_policy(state: AppState) -> None:
    routes, spec = _api_routes(state)
    bad = []
    for route in routes:
        policy = policy_of(route)
        for name, op in _operations(route, spec):
            statuses = set(op["responses"])
            if policy != PUBLIC and "401" not in statuses:
                bad.append(f"{name} ({policy}): no 401")
            if policy not in (PUBLIC, AUTHENTICATED) and "403" not in statuses:
                bad.append(f"{name} ({policy}): no 403")
            if "{" in route.path and "404" not in statuses:
                bad.append(f"{name}: a path parameter but no 404")
            for status, resp in op["responses"].items():
                if status[0] in "45":
                    schema = resp.get("content", {}).get("application/json", {}).get("schema")
                    if schema != {"$ref": ERROR_REF}:
                        bad.append(f"{name}: {status} is not documented as ErrorOut: {schema}")
    assert bad == []  # also: 422 is ErrorOut, not FastAPI's HTTPValidationError


def test_error_statuses_follow_policy_path_and_input(state: AppState) -> None:
    """Spot checks of the one rule (``documented_errors``) and the routes' own ``raises``."""
    routes, spec = _api_routes(state)
    ops = dict(op for r in routes for op in _operations(r, spec))

    def statuses(name: str) -> set[int]:
        return {int(s) for s in ops[name]["responses"] if s[0] in "45"}

    assert statuses("POST /api/v1/auth/login") == {401, 422, 423, 429, 503}
    assert statuses("GET /api/v1/me") == {401, 503}  # reachable while a session is pending
    assert statuses("GET /api/v1/inbox") == {401, 403, 503}
    assert statuses("GET /api/v1/studies/{study}") == {401, 403, 404, 422, 503}
    assert statuses("PUT /api/v1/studies/{study}/entry/{subject}/{event}/{form}") == {
        401, 403, 404, 409, 422, 423, 503}
    assert statuses("GET /api/v1/extracts/{request_id}/package") == {401, 403, 404, 422, 503}
    assert set(ERROR_DOCS) >= {s for name in ops for s in statuses(name)}
    assert documented_errors([], path="/api/v1/x", methods=["POST"], takes_input=False) == set()
