"""The base layout, flash messages, CSRF field and the error page."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote, unquote

import htpy as h
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

CSRF_COOKIE = "edc_csrf"
FLASH_COOKIE = "edc_flash"


def csrf_token(request: Request) -> str:
    """The request's double-submit token: the cookie's value, or a new one set on the response."""
    tok = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not tok:
        tok = secrets.token_urlsafe(24)
        request.state.new_csrf = tok
    return tok


def csrf_field(request: Request) -> h.VoidElement:
    return h.input(type="hidden", name="csrf_token", value=csrf_token(request))


def nav(request: Request) -> h.Node:
    actor = getattr(request.state, "actor", None)
    if actor is None:
        return h.nav[h.a(href="/login")["登录 / Log in"]]
    links: list[Any] = [h.a(href="/")["首页 / Home"]]
    perms = {p.value for p in getattr(actor, "perms", ())}
    if perms & {"study.read", "study.manage"}:
        links += [" · ", h.a(href="/studies")["研究 / Studies"]]
    if "ethics.record" in perms:
        links += [" · ", h.a(href="/ethics")["伦理审查 / Ethics"]]
    if "code_index.lookup" in perms:
        links += [" · ", h.a(href="/code-index")["患者代码索引 / Code index"]]
    if "audit.verify" in perms:
        links += [" · ", h.a(href="/audit")["审计 / Audit"]]
    if "audit.read" in perms:
        links += [" · ", h.a(href="/audit/entries")["审计轨迹 / Audit trail"]]
    if "account.manage" in perms:
        links += [" · ", h.a(href="/admin/accounts")["账户管理 / Accounts"],
                  " · ", h.a(href="/admin/organisations")["接收机构 / Organisations"]]
    if "extract.approve" in perms:
        links += [" · ", h.a(href="/cross-border")["数据出境 / Cross-border"]]
    if "retention.review" in perms:
        links += [" · ", h.a(href="/retention")["保存期审查 / Retention review"]]
    links += [" · ", h.a(href="/account")["我的账户 / My account"]]
    return h.nav[
        *links,
        " · ",
        h.span(".who")[f"{actor.display_name} ({actor.username})"],
        h.form(".inline", method="post", action="/logout")[
            csrf_field(request), h.button(type="submit")["退出 / Log out"]],
    ]


def page(request: Request, title: str, *content: h.Node, status: int = 200) -> HTMLResponse:
    flash = unquote(request.cookies.get(FLASH_COOKIE, "")) or None
    doc = h.html(lang="zh-CN")[
        h.head[
            h.meta(charset="utf-8"),
            h.meta(name="viewport", content="width=device-width, initial-scale=1"),
            h.title[f"{title} — EDC"],
            h.link(rel="stylesheet", href="/static/app.css"),
            h.script(src="/static/htmx.min.js", defer=True),
        ],
        h.body[
            h.header[h.strong["临床研究电子数据采集 · Clinical research EDC"], nav(request)],
            h.div("#messages")[h.p(".flash", role="status")[flash] if flash else None],
            h.main[h.h1[title], *content],
            h.footer["GB/T 39725-2020 §11.3"],
        ],
    ]
    resp = HTMLResponse(str(doc), status_code=status)  # htpy writes the doctype
    if flash:
        resp.delete_cookie(FLASH_COOKIE)
    _set_csrf(request, resp)
    return resp


def _set_csrf(request: Request, resp: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        settings = request.app.state.edc.settings
        resp.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict",
                        secure=settings.secure_cookies)


def redirect(request: Request, url: str, message: str | None = None) -> Response:
    """Post-redirect-get (``HX-Redirect`` under htmx) with a flash message."""
    if request.headers.get("HX-Request"):
        resp: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        resp = RedirectResponse(url, status_code=303)
    if message:
        resp.set_cookie(FLASH_COOKIE, quote(message), httponly=True, samesite="strict",
                        max_age=60, secure=request.app.state.edc.settings.secure_cookies)
    return resp


def error_page(request: Request, status: int, message: str, field: str | None,
               clause: str | None) -> h.Element:
    parts: list[Any] = [h.p(".error", role="alert")[message]]
    if field:
        parts.append(h.p[f"字段 / field: {field}"])
    if clause:
        parts.append(h.p[f"条款 / clause: GB/T 39725-2020 {clause}"])
    parts.append(h.p[h.a(href="/")["返回首页 / Back to home"]])
    if request.headers.get("HX-Request"):
        return h.div(".error-fragment")[parts]
    return h.html(lang="zh-CN")[
        h.head[h.meta(charset="utf-8"), h.title[f"{status} — EDC"],
               h.link(rel="stylesheet", href="/static/app.css")],
        h.body[h.main[h.h1[f"{status}"], parts]],
    ]
