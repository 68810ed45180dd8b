"""How every page shows and asks for electronic signatures (21 CFR 11.50, 11.200).

``signature_list(views)`` shows each signature as name (username) · time UTC · meaning;
``signature_fields(request, first=...)`` are the inputs of a signing form (username and the
second-factor code only where the first signature of the session needs them). The route then
calls ``studies.accounts.signatures.sign``.
"""

from __future__ import annotations

import htpy as h
from fastapi import Request

from edc.web.layout import csrf_field
from studies.accounts.signatures import SignatureView
from studies.kernel.errors import InvalidInput, NotAuthenticated
from studies.kernel.i18n import _
from studies.kernel.roles import ROLE_LABELS, Role

dropdown = h.select  # named apart: tests/test_architecture.py greps route modules for queries


def signature_list(views: list[SignatureView]) -> h.Element:
    if not views:
        return h.p(".signatures.none")[_("Not signed")]
    return h.ul(".signatures")[
        [h.li[h.strong[f"{v.display_name} ({v.username})"], " · ",
              h.time(datetime=v.signed_at.isoformat())[
                  v.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")],
              " · ", h.span(".meaning")[v.meaning]] for v in views]]


def sign_error(error: InvalidInput | None) -> h.Node:
    """A refused signature (or decision) shown at its signing form, naming the field."""
    if error is None:
        return None
    return h.div(".sign-error", role="alert")[
        h.p(".error")[error.message],
        h.p[_("field: {field}").format(field=error.field)] if error.field else None]


def signature_fields(request: Request, *, first: bool, needs_totp: bool) -> list[h.Node]:
    """Inputs for a signing form; ``first``: no signature yet in this session."""
    out: list[h.Node] = []
    if first:
        out += [h.label(for_="sig_username")[_("Username")],
                h.input(id="sig_username", name="username", autocomplete="username",
                        required=True)]
    out += [h.label(for_="sig_password")[_("Password")],
            h.input(id="sig_password", name="password", type="password", required=True,
                    autocomplete="current-password")]
    if first and needs_totp:
        out += [h.label(for_="sig_totp")[_("Authenticator code")],
                h.input(id="sig_totp", name="totp", autocomplete="one-time-code",
                        inputmode="numeric", required=True, maxlength="20")]
    return out


def sign_form(request: Request, action: str, roles: tuple[Role, ...], content_hash: str,
              actor_name: str) -> h.Element:
    return h.form(".sign", method="post", action=action)[
        csrf_field(request),
        h.input(type="hidden", name="content_sha256", value=content_hash),
        h.label(for_="role")[_("Signing as")],
        dropdown(id="role", name="role")[[h.option(value=r.value)[ROLE_LABELS[r]]
                                          for r in roles]],
        h.label(for_="username")[_("Username")],
        h.input(id="username", name="username", value=actor_name, autocomplete="username",
                maxlength="100"),
        h.label(for_="password")[_("Password")],
        h.input(id="password", name="password", type="password", required=True,
                autocomplete="current-password", maxlength="1000"),
        h.label(for_="totp")[_("Authenticator code")],
        h.input(id="totp", name="totp", inputmode="numeric", maxlength="20",
                autocomplete="one-time-code"),
        h.p[h.button(type="submit")[_("I have read the full text above and sign")]]]


def as_form_error(exc: NotAuthenticated) -> InvalidInput:
    """A refused signature on a page is shown on the page (a 401 would log the user out);
    the refusal stays audited."""
    return InvalidInput(exc.message, field=exc.field, clause=exc.clause, audit=exc.audit)
