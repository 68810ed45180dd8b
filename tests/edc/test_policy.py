"""Deny by default: every route declares a policy; FastAPI's own doc routes are the only
exceptions, and they expose no data."""

from __future__ import annotations

from fastapi.routing import APIRoute

from edc.app import create_app
from edc.policy import iter_routes, policy_of
from edc.state import AppState

DOC_ROUTES = {"/api/v1/openapi.json", "/api/v1/docs", "/docs/oauth2-redirect"}


def test_every_route_declares_exactly_one_policy(state: AppState) -> None:
    app = create_app(state)
    missing, seen = [], set()
    for route in iter_routes(app.routes):
        seen.add(getattr(route, "path", None))
        if isinstance(route, APIRoute) and policy_of(route) is None:
            missing.append(f"{sorted(route.methods)} {route.path}")
        elif not isinstance(route, APIRoute) and getattr(route, "path", "") not in DOC_ROUTES:
            missing.append(f"non-API route {getattr(route, 'path', route)}")
    assert missing == []
    assert {"/login", "/api/v1/audit/verify", "/audit"} <= seen  # the walk reaches routers


def test_every_route_runs_a_plain_handler_in_one_worker_thread_hop(state: AppState) -> None:
    """Every router's routes are ``edc.routing.Route``s (a router made without
    ``route_class=Route`` would bring back the extra hops, docs/benchmarks-entry.md); their
    plain ``def`` handlers reach FastAPI as coroutines."""
    import inspect

    from edc.routing import Route

    app = create_app(state)
    plain = [f"{sorted(r.methods)} {r.path}" for r in iter_routes(app.routes)
             if isinstance(r, APIRoute) and not isinstance(r, Route)]
    assert plain == []
    handlers = [r.endpoint for r in iter_routes(app.routes) if isinstance(r, Route)]
    assert handlers and all(inspect.iscoroutinefunction(h) or inspect.isasyncgenfunction(h)
                            for h in handlers)
