"""Entry-time checks of a form version's items: ranges, formats, required items, branching logic
(shown or hidden) and calculated values, on submitted values before anything is saved."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from studies.forms import datatypes
from studies.forms import expressions as ex
from studies.forms.models import (
    FormVersion,
    Item,
)
from studies.forms.service import get_form, get_version, items_of
from studies.kernel.actor import Actor, require
from studies.kernel.errors import NotFound
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry import service as registry


@dataclass
class EntryCheck:
    """The outcome of checking one form's values: typed values to store (hidden fields and
    display-only items left out, calculations computed), field errors, and what was hidden."""

    values: dict[str, Any]
    errors: dict[str, str]
    hidden: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_values(items: list[Item], submitted: dict[str, Any], *, today: dt.date,
                 context: dict[str, Any] | None = None) -> EntryCheck:
    """Apply a form version's rules to submitted values (pure; no database).

    Types, ranges, code lists and text formats are checked; calculated fields are computed by
    the server (a submitted value for one is ignored); a field hidden by its branching logic
    is neither required nor stored. ``context`` holds the subject's stored values from other
    forms, which logic may refer to (REDCap logic often does); it is read, never returned.
    """
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {}
    by_name = {i.name: i for i in items}
    for name in submitted:
        if name not in by_name:
            errors[name] = _("no such field on this form")
    for i in items:
        if i.field_type in ("descriptive", "calc") or i.name not in submitted:
            continue
        raw = submitted[i.name]
        if raw is None or raw == "" or raw == []:
            continue
        try:
            typed[i.name] = datatypes.DATA_TYPES[i.data_type].parse(i, raw, today)
        except ValueError as exc:
            errors[i.name] = str(exc)
    env: dict[str, Any] = {**(context or {}), **typed}
    calcs = [i for i in items if i.field_type == "calc" and i.calc]
    for _x in range(2):  # calculations may use earlier calculations
        for i in calcs:
            v = ex.evaluate(ex.parse(i.calc or ""), env)
            env[i.name] = v if isinstance(v, Decimal) else None
    hidden: list[str] = []
    for i in items:
        if i.show_if and ex.evaluate(ex.parse(i.show_if), env) is not True:
            hidden.append(i.name)
    out: dict[str, Any] = {}
    for i in items:
        if i.name in hidden or i.field_type == "descriptive":
            errors.pop(i.name, None)
            continue
        if i.field_type == "calc":
            v = env.get(i.name)
            if isinstance(v, Decimal):
                out[i.name] = format(v.normalize(), "f") if v == v.to_integral_value() else \
                    format(v, "f")
            continue
        if i.name in typed:
            out[i.name] = typed[i.name]
        elif i.required and i.name not in errors:
            errors[i.name] = _("required")
    return EntryCheck(values=out, errors=errors, hidden=hidden)


def check_entry(session: Session, *, form_version_id: str, values: dict[str, Any],
                today: dt.date, context: dict[str, Any] | None = None) -> EntryCheck:
    """:func:`check_values` for a stored form version (what data entry calls)."""
    v = session.get(FormVersion, form_version_id)
    if v is None:
        raise NotFound(_("no such form version"), field="form_version_id")
    return check_values(items_of(session, v.id), values, today=today, context=context)


def check_entry_for(session: Session, *, actor: Actor, study_code: str, form_name: str,
                    number: int, values: dict[str, Any], today: dt.date) -> EntryCheck:
    require(actor, Perm.STUDY_READ, study=study_code)
    study = registry.get_study(session, study_code)
    form = get_form(session, study, form_name)
    return check_entry(session, form_version_id=get_version(session, form, number).id,
                       values=values, today=today)
