"""The CSRF check of every form POST (the token itself: ``edc.web.layout.csrf_field``)."""

from __future__ import annotations

from fastapi import Depends, Request

from edc.web.layout import CSRF_COOKIE
from studies.kernel.errors import PermissionDenied


async def verify_csrf(request: Request) -> None:
    """Double-submit check on every form POST: the hidden field must equal the cookie."""
    form = await request.form()
    sent = form.get("csrf_token")
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(sent, str) or sent != cookie:
        raise PermissionDenied("the form has expired or was not sent from this site; reload "
                               "the page and try again / 表单已失效，请刷新后重试")


Csrf = Depends(verify_csrf)
