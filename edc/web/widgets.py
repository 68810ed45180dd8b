"""Small view helpers shared by the pages: labelled fields, check boxes, drop-downs, a posted
form, the study's readiness banner and a time to the minute (local: ``edc.web.timefmt``).
On a refused form (``edc.web.forms``) the fields show what was typed and their errors."""

from __future__ import annotations

from typing import Any

import htpy as h
from fastapi import Request

from edc.web.forms import refill
from edc.web.layout import csrf_field
from edc.web.timefmt import local_minute
from studies.kernel.i18n import Label, _

SELECT = h.select  # (named so the architecture test's query check does not misfire)


def labelled_input(ident: str, label: str, **attrs: Any) -> list[h.Node]:
    attrs.setdefault("name", ident)
    return [h.label(for_=ident)[label], h.input(id=ident, **attrs)]


def field_error(name: str, label: Label) -> h.Node:
    """The message beside a field of a refused form (recording the field's label for the
    summary at the top)."""
    state = refill()
    if state is None:
        return None
    state.labels.setdefault(name, label)
    err = state.errors.get(name)
    return h.p(".field-error", id=f"error-{name}", role="alert")[err] if err else None


def field(label: Label, name: str, *, type_: str = "text", required: bool = True,
          value: str | None = None, textarea: bool = False, **attrs: Any) -> h.Node:
    state = refill()
    if state is not None:
        value = state.value(name)
    err = field_error(name, label)
    if err is not None:
        attrs["aria_invalid"] = "true"
        attrs["aria_describedby"] = f"error-{name}"
    control: h.Element | h.VoidElement
    if textarea:
        control = h.textarea(id=name, name=name, required=required, rows="3", **attrs)[
            value or ""]
    else:
        control = h.input(id=name, name=name, type=type_, required=required, value=value,
                          **attrs)
    return h.div(".field", id=f"field-{name}")[h.label(for_=name)[label], control, err]


def checkbox(label: Label, name: str, checked: bool = False, value: str = "on") -> h.Node:
    state = refill()
    if state is not None:
        checked = value in state.chosen(name)
    return h.label(".check")[h.input(type="checkbox", name=name, value=value, checked=checked),
                             " ", label]


def choice(label: Label, name: str, options: list[tuple[str, Label]],
           selected: str | None = None) -> h.Node:
    state = refill()
    if state is not None:
        selected = state.value(name)
    return h.div(".field", id=f"field-{name}")[
        h.label(for_=name)[label],
        SELECT(id=name, name=name)[[h.option(value=v, selected=v == selected)[t]
                                    for v, t in options]],
        field_error(name, label)]


def post_form(action: str, request: Request, *content: h.Node, button: str,
              multipart: bool = False) -> h.Element:
    return h.form(method="post", action=action,
                  enctype="multipart/form-data" if multipart else None)[
        csrf_field(request), *content, h.p[h.button(type="submit")[button]]]


def banner(readiness: dict[str, Any]) -> h.Node:
    if readiness["open"]:
        a = readiness["approval"]
        return h.p(".ok", role="status")[
            _("✔ Enrolment and data entry are open —") + " ",
            f"{a['committee']} {a['reference']}, protocol {a['protocol_label']}",
            f", expires {a['expires_on']}" if a["expires_on"] else ""]
    return h.p(".bad", role="alert")[
        _("✘ Enrolment and data entry are stopped:") + " ", readiness["reason"],
        " (GB/T 39725-2020 §11.3.4.2)"]


def utc_minute(value: Any) -> str:
    """A stored time as pages show it: local (display zone), to the minute."""
    return local_minute(value)
