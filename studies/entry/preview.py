"""The form as the investigator types (issue 18, item 7): what a save of the values typed so far
would find — each field's error, the calculated values, the fields the branching logic hides —
with nothing written. The rules are the save's own (:func:`studies.forms.checks.check_values`,
the expression engine of :mod:`studies.forms.expressions`, on the same form version and the
subject's other forms as context), so the page can show them live and the save refuses exactly
what the page showed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from studies.entry.service import entry_version, find_record, resolve, values_and_context
from studies.forms import checks as form_checks
from studies.forms import service as forms
from studies.kernel.actor import Actor
from studies.kernel.roles import Perm


@dataclass(frozen=True)
class Preview:
    errors: dict[str, str]
    calculated: dict[str, str | None]  # every calculated field: its value, or None (blank)
    hidden: frozenset[str]  # fields the branching logic hides for these values


def preview(session: Session, *, actor: Actor, study_code: str, subject_code: str,
            event_name: str, form_name: str, values: dict[str, Any] | None = None,
            repeat: int = 1, today: dt.date | None = None) -> Preview:
    """Check ``values`` (as typed; None: the stored values) against the form version a save
    would use. Needs the right to read the subject's entry data (scope is the save's); it
    writes nothing, so it is not recorded in the ledger."""
    t = resolve(session, actor=actor, perm=Perm.ENTRY_READ, study_code=study_code,
                subject_code=subject_code, event_name=event_name, form_name=form_name,
                repeat=repeat)
    record = find_record(session, t)
    fv_id = record.form_version_id if record is not None else entry_version(session, t.form).id
    items = [i for i in forms.item_rows(session, fv_id)
             if i.classification != "direct_identifier"]
    stored, context = values_and_context(session, t.subject.id,
                                         record.id if record is not None else None)
    known = {i.name for i in items}
    typed = {k: v for k, v in (stored if values is None else values).items() if k in known}
    check = form_checks.check_values(items, typed, today=today or dt.date.today(),
                                     context=context)
    return Preview(errors=check.errors,
                   calculated={i.name: check.values.get(i.name) for i in items
                               if i.field_type == "calc"},
                   hidden=frozenset(check.hidden))
