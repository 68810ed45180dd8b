"""Static assets: the stylesheet, htmx and Swagger UI (npm packages installed by ``make``,
never a CDN: a hospital intranet has none, and the CSP allows only 'self').

htmx and the Swagger UI files are served under URLs carrying a hash of their content with a
year-long ``immutable`` cache lifetime, so a browser loads each once per version. The API
reference (``/api/v1/docs``) is an HTML page of our own that loads Swagger UI's files and
its start-up script from here (no inline script)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import htpy as h
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from edc.policy import public
from edc.state import AppState
from studies.kernel.i18n import _

STATIC = Path(__file__).parent / "static"
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
SWAGGER_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}


def content_hash(path: Path) -> str:
    if not path.exists():
        return "missing"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def install_assets(app: FastAPI, state: AppState) -> None:
    assets = state.settings.assets_dir
    htmx = assets / "htmx.org" / "dist" / "htmx.min.js"
    swagger = assets / "swagger-ui-dist"
    htmx_hash = content_hash(htmx)
    app.state.htmx_url = f"/static/htmx-{htmx_hash}.min.js"
    swagger_hash = content_hash(swagger / "swagger-ui-bundle.js")

    @app.get("/static/htmx-{digest}.min.js", include_in_schema=False, dependencies=[public()])
    def htmx_js(digest: str) -> Response:
        if not htmx.exists():
            return Response("/* htmx not installed: run make */", media_type="text/javascript")
        if digest != htmx_hash:  # an old page's URL: the current file, not cached for long
            return FileResponse(htmx, media_type="text/javascript")
        return FileResponse(htmx, media_type="text/javascript", headers=IMMUTABLE)

    @app.get("/static/htmx.min.js", include_in_schema=False, dependencies=[public()])
    def htmx_plain() -> Response:
        return htmx_js(htmx_hash)

    @app.get("/static/idle.js", include_in_schema=False, dependencies=[public()])
    def idle_js() -> Response:
        return FileResponse(STATIC / "idle.js", media_type="text/javascript")

    @app.get("/static/app.css", include_in_schema=False, dependencies=[public()])
    def app_css() -> Response:
        return FileResponse(STATIC / "app.css", media_type="text/css")

    @app.get("/static/noscript.css", include_in_schema=False, dependencies=[public()])
    def noscript_css() -> Response:
        return FileResponse(STATIC / "noscript.css", media_type="text/css")
    @app.get("/static/entry.js", include_in_schema=False, dependencies=[public()])
    def entry_js() -> Response:
        return FileResponse(STATIC / "entry.js", media_type="text/javascript")

    @app.get("/static/swagger-{digest}/{name}", include_in_schema=False,
             dependencies=[public()])
    def swagger_file(digest: str, name: str) -> Response:
        if name == "init.js":
            return FileResponse(STATIC / "swagger-init.js", media_type="text/javascript")
        if name not in SWAGGER_FILES or not (swagger / name).exists():
            raise HTTPException(404, _("not found"))
        return FileResponse(swagger / name, media_type=SWAGGER_FILES[name],
                            headers=IMMUTABLE if digest == swagger_hash else None)

    def api_docs(request: Request) -> Response:  # public, as FastAPI's own docs route
        base = f"/static/swagger-{swagger_hash}"
        doc = h.html(lang="en")[
            h.head[h.meta(charset="utf-8"), h.title["EDC API — Swagger UI"],
                   h.link(rel="icon", href="data:,"),
                   h.link(rel="stylesheet", href=f"{base}/swagger-ui.css")],
            h.body[h.div("#swagger-ui", data_openapi="/api/v1/openapi.json"),
                   h.script(src=f"{base}/swagger-ui-bundle.js"),
                   h.script(src=f"{base}/init.js")]]
        return HTMLResponse(str(doc))

    app.add_route("/api/v1/docs", api_docs, include_in_schema=False)
