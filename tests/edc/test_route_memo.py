"""The top-level router's memo of which route matched (``edc.app.RouteMemo``): a repeated
request is answered by the route the full scan picks, and what is not a full match is still
answered by FastAPI's own scan."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from edc.app import RouteMemo, memoise_routes


def _app() -> FastAPI:
    app = FastAPI()
    first, second = APIRouter(prefix="/api"), APIRouter(prefix="/api")

    @first.get("/things/new")
    def new() -> str:
        return "literal"

    @first.put("/only-put")
    def only_put() -> str:
        return "put"

    @second.get("/things/{name}")
    def thing(name: str) -> str:
        return f"param {name}"

    @second.get("/only-put")
    def shadowed_get() -> str:  # a full match after an earlier partial one
        return "get"

    app.include_router(first)
    app.include_router(second)
    memoise_routes(app)
    return app


def test_repeated_requests_reach_the_route_the_scan_picks() -> None:
    app = _app()
    assert isinstance(app.router, RouteMemo)
    with TestClient(app) as c:
        for _ in range(3):  # the first is scanned, the others come from the memo
            assert c.get("/api/things/new").json() == "literal"
            assert c.get("/api/things/x1").json() == "param x1"
            assert c.get("/api/things/x2").json() == "param x2"
            assert c.put("/api/only-put").json() == "put"
            assert c.get("/api/only-put").json() == "get"
            assert c.post("/api/only-put").status_code == 405
            assert c.get("/api/nothing").status_code == 404
        assert len(app.router._memo) == 5  # full matches only

        @app.get("/api/added-later")
        def later() -> str:
            return "later"

        assert c.get("/api/added-later").json() == "later"
        assert c.get("/api/things/new").json() == "literal"


def test_a_small_memo_starts_afresh() -> None:
    app = _app()
    assert isinstance(app.router, RouteMemo)
    app.router.SIZE = 2
    with TestClient(app) as c:
        for n in range(5):
            assert c.get(f"/api/things/t{n}").json() == f"param t{n}"
        assert len(app.router._memo) <= 2
