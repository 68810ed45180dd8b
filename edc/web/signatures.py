"""How every page shows and asks for electronic signatures (21 CFR 11.50, 11.200).

``signature_list(views)`` shows each signature as name (username) · time UTC · meaning;
``signature_fields(request, first=...)`` are the inputs of a signing form (username and the
second-factor code only where the first signature of the session needs them). The route then
calls ``studies.accounts.signatures.sign``.
"""

from __future__ import annotations

import htpy as h
from fastapi import Request

from studies.accounts.signatures import SignatureView


def signature_list(views: list[SignatureView]) -> h.Element:
    if not views:
        return h.p(".signatures.none")["未签名 / Not signed"]
    return h.ul(".signatures")[
        [h.li[h.strong[f"{v.display_name} ({v.username})"], " · ",
              h.time(datetime=v.signed_at.isoformat())[
                  v.signed_at.strftime("%Y-%m-%d %H:%M:%S UTC")],
              " · ", h.span(".meaning")[v.meaning]] for v in views]]


def signature_fields(request: Request, *, first: bool, needs_totp: bool) -> list[h.Node]:
    """Inputs for a signing form; ``first``: no signature yet in this session."""
    out: list[h.Node] = []
    if first:
        out += [h.label(for_="sig_username")["用户名 / Username"],
                h.input(id="sig_username", name="username", autocomplete="username",
                        required=True)]
    out += [h.label(for_="sig_password")["密码 / Password"],
            h.input(id="sig_password", name="password", type="password", required=True,
                    autocomplete="current-password")]
    if first and needs_totp:
        out += [h.label(for_="sig_totp")["动态口令 / Authenticator code"],
                h.input(id="sig_totp", name="totp", autocomplete="one-time-code",
                        inputmode="numeric", required=True, maxlength="20")]
    return out
