"""The CSRF checks: of every form POST (the token itself: ``edc.web.layout.csrf_field``) and
of every JSON API write made with the session cookie (:func:`verify_api_request`)."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import Depends, Request

from edc.web.layout import CSRF_COOKIE
from studies.kernel.errors import PermissionDenied
from studies.kernel.i18n import _


async def verify_csrf(request: Request) -> None:
    """Double-submit check on every form POST: the hidden field must equal the cookie."""
    form = await request.form()
    sent = form.get("csrf_token")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(sent, str) or sent != cookie:
        raise PermissionDenied(_("the form has expired or was not sent from this site; reload the "
                                 "page and try again"))


Csrf = Depends(verify_csrf)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def _json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def _same_origin(origin: str, request: Request) -> bool:
    """Whether an ``Origin`` header names this server (host and port as the client reached
    it, i.e. the ``Host`` header)."""
    host = (request.headers.get("host") or "").lower()
    parts = urlsplit(origin.strip().lower())
    if not host or parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc == host


def verify_api_request(request: Request) -> None:
    """The CSRF check of a JSON API write made with the session cookie (a browser could be
    made to send the cookie from another site): refused when ``Sec-Fetch-Site`` says
    cross-site or ``Origin`` names another site, and unless it carries a JSON content type
    (which no HTML form can send, and no other site's script can without a CORS preflight
    this server never grants) or the ``X-CSRF-Token`` header equal to the ``edc_csrf``
    cookie (for uploads). API tokens are not cookies and are not checked."""
    if request.method in SAFE_METHODS:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if (fetch_site is not None and fetch_site.lower() not in SAME_SITE_FETCH) or (
            origin is not None and not _same_origin(origin, request)):
        raise PermissionDenied(_("a request from another site is refused"))
    sent = request.headers.get(CSRF_HEADER)
    cookie = request.cookies.get(CSRF_COOKIE)
    if sent and cookie and secrets.compare_digest(sent.encode(), cookie.encode()):
        return
    if _json_type(request.headers.get("content-type", "")):
        return
    raise PermissionDenied(
        _("a write with the session cookie must be sent as Content-Type: application/json, or "
          "with the X-CSRF-Token header (the edc_csrf cookie)"))
