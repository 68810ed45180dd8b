"""The base layout (menu per role, breadcrumbs, the summary of a refused form), flash
messages, CSRF field and the error page."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote, unquote

import htpy as h
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studies.kernel import i18n
from studies.kernel.i18n import _, _l

CSRF_COOKIE = "edc_csrf"
FLASH_COOKIE = "edc_flash"
LANGUAGE_COOKIE = "edc_lang"


def csrf_token(request: Request) -> str:
    """The request's double-submit token: the cookie's value, or a new one set on the response."""
    tok = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not tok:
        tok = secrets.token_urlsafe(24)
        request.state.new_csrf = tok
    return tok


def csrf_field(request: Request) -> h.VoidElement:
    return h.input(type="hidden", name="csrf_token", value=csrf_token(request))


def language_url(request: Request, lang: str) -> str:
    """The switch to ``lang`` that comes back to this page."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/language/{lang}?next={quote(here, safe='')}"


def language_switch(request: Request) -> h.Node:
    """The link to the other language, named in that language ("English" / "中文")."""
    other = "en" if i18n.current() == "zh" else "zh"
    return h.a(".lang", href=language_url(request, other), hreflang=other,
               lang="en" if other == "en" else "zh-CN")[i18n.LANGUAGE_NAMES[other]]


def nav(request: Request) -> h.Node:
    """The menu: what the actor's roles may do (``edc.web.menu``), the current study's work
    when the page belongs to one, who is logged in and the log-out button."""
    from edc.web.menu import global_links, study_links

    actor = getattr(request.state, "actor", None)
    if actor is None:
        return h.nav(".menu", aria_label=_("Menu"))[h.a(href="/")[_("Home")], " · ",
                                                   h.a(href="/login")[_("Log in")], " · ",
                                                   language_switch(request)]
    here = request.url.path
    links = [h.a(href=lk.href, aria_current="page" if lk.href == here else None)[lk.label]
             for lk in global_links(actor)]
    study = request.path_params.get("study")
    study_menu = None
    if study:
        work = study_links(actor, str(study))
        if work:
            study_menu = h.nav(".study-menu", aria_label=_("Study {study}").format(study=study))[
                h.strong[f"{study}: "],
                _joined([h.a(href=lk.href, aria_current="page" if lk.href == here else None)[
                    lk.label] for lk in work])]
    return h.div(".menus")[
        h.nav(".menu", aria_label=_("Menu"))[
            _joined(links), " · ",
            h.span(".who")[f"{actor.display_name} ({actor.username})"], " · ",
            language_switch(request), " ",
            h.form(".inline", method="post", action="/logout")[
                csrf_field(request), h.button(type="submit")[_("Log out")]]],
        study_menu]


def _joined(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for n, item in enumerate(items):
        out += [" · "] if n else []
        out.append(item)
    return out


def breadcrumbs(request: Request, title: str) -> h.Node:
    """首页 › study › this page."""
    path = request.url.path
    if path == "/":
        return None
    crumbs: list[Any] = [h.a(href="/")[_("Home")]]
    study = request.path_params.get("study")
    if study and path.startswith("/studies/"):
        base = f"/studies/{quote(str(study))}"
        crumbs += [h.a(href="/studies")[_("Studies")]]
        if path != base:
            crumbs.append(h.a(href=base)[str(study)])
    crumbs.append(h.span(aria_current="page")[title])
    out: list[Any] = []
    for n, c in enumerate(crumbs):
        out += [" › "] if n else []
        out.append(c)
    return h.nav(".breadcrumbs", aria_label=_("You are here"))[out]


def error_summary() -> h.Node:
    """On a refused form: every error, naming the field by its label, linked to the field."""
    from edc.web.forms import refill

    state = refill()
    if state is None or not state.errors:
        return None
    items = []
    for name, message in state.errors.items():
        label = state.labels.get(name)
        if label:
            items.append(h.li[h.a(href=f"#field-{name}")[label], f": {message}"])
        else:
            items.append(h.li[message])
    return h.div(".error.form-errors", role="alert")[
        h.p[_("The form has errors and nothing was saved; correct them and submit again:")],
        h.ul[items],
        h.p[_("clause: GB/T 39725-2020 "
              "{clause}").format(clause=state.clause)] if state.clause else None]


# htmx would add an inline <style> the CSP refuses (app.css styles its indicators instead);
# a refused form's 4xx answer is a fragment to show (the errors at the field, or the error
# message retargeted to #messages), so 4xx is swapped rather than logged as an error.
HTMX_CONFIG = json.dumps({
    "includeIndicatorStyles": False,
    "responseHandling": [{"code": "204", "swap": False}, {"code": "[234]..", "swap": True},
                         {"code": "...", "swap": False, "error": True}]},
    separators=(",", ":"))


def htmx_url(request: Request) -> str:
    return getattr(request.app.state, "htmx_url", "/static/htmx.min.js")


def idle_script(request: Request) -> h.Node:
    """For a logged-in page: blank the screen after EDC_IDLE_BLANK_SECONDS without input."""
    seconds = request.app.state.edc.settings.idle_blank_seconds
    if not seconds or getattr(request.state, "actor", None) is None:
        return None
    return h.script(src="/static/idle.js", data_idle_seconds=str(seconds))


def page(request: Request, title: str, *content: h.Node, status: int = 200,
         head: h.Node = None) -> HTMLResponse:
    flash = unquote(request.cookies.get(FLASH_COOKIE, "")) or None
    other = "en" if i18n.current() == "zh" else "zh"
    doc = h.html(lang="zh-CN" if i18n.current() == "zh" else "en")[
        h.head[
            h.meta(charset="utf-8"),
            h.meta(name="viewport", content="width=device-width, initial-scale=1"),
            h.meta(name="htmx-config", content=HTMX_CONFIG),
            head,
            h.title[f"{title} — EDC"],
            h.link(rel="alternate", hreflang=other, href=language_url(request, other)),
            h.link(rel="stylesheet", href="/static/app.css"),
            h.noscript[h.link(rel="stylesheet", href="/static/noscript.css")],
            h.link(rel="icon", href="data:,"),  # no favicon request (and no 404 logged)
            h.script(src=htmx_url(request), defer=True),
            idle_script(request),
        ],
        h.body[
            h.header[h.strong[_("Clinical research EDC")], nav(request)],
            breadcrumbs(request, title),
            h.div("#messages")[h.p(".flash", role="status")[flash] if flash else None],
            h.main[h.h1[title], error_summary(), *content],
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
               clause: str | None) -> Response:
    """A refusal as a page with the menu (or, under htmx, a fragment for ``#messages``)."""
    parts: list[Any] = [h.p(".error", role="alert")[message]]
    if field:
        parts.append(h.p[_("field: {field}").format(field=field)])
    if clause:
        parts.append(h.p[_("clause: GB/T 39725-2020 {clause}").format(clause=clause)])
    parts.append(h.p[h.a(href="/")[_("Back to home")]])
    if request.headers.get("HX-Request"):
        return HTMLResponse(str(h.div(".error-fragment")[parts]), status_code=status,
                            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})
    title = STATUS_TITLES.get(status, _("Something went wrong"))
    return page(request, f"{status} — {title}", *parts, status=status)


STATUS_TITLES = {
    400: _l("Bad request"), 401: _l("Signature refused"),
    403: _l("Not permitted"), 404: _l("Not found"),
    405: _l("Method not allowed"), 409: _l("Conflict"),
    413: _l("Too large"), 422: _l("Invalid input"), 423: _l("Locked"),
    429: _l("Too many attempts"), 500: _l("Internal error"),
    503: _l("Server busy"),
}
