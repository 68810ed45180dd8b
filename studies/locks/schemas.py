"""Input shapes of locks and unlock requests, their parsing from a page's form fields, and the
output shapes the API answers with."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _

MAX_PERIOD_HOURS = 24 * 90


class LockIn(BaseModel):
    """A lock request. ``sites`` / ``forms``: one lock per item (bulk); ``subjects``: one lock
    of that list of subjects."""

    model_config = ConfigDict(extra="forbid")
    scope: Literal["study", "site", "form", "subjects"]
    sites: list[str] = PField(default_factory=list, max_length=200)
    forms: list[str] = PField(default_factory=list, max_length=200)
    subjects: list[str] = PField(default_factory=list, max_length=5000)
    override_reason: str | None = PField(default=None, max_length=2000)


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = PField(max_length=20)
    form: str | None = PField(default=None, max_length=64)
    fields: list[str] | None = PField(default=None, max_length=200)


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[ChangeIn] = PField(max_length=500)
    reason: str = PField(max_length=4000)
    planned_date: dt.date
    period_hours: int = PField(ge=1, le=MAX_PERIOD_HOURS)


def _words(text: str | None) -> list[str]:
    return [w for w in (text or "").replace(",", " ").replace("，", " ").split() if w]


def lock_in_from_form(*, scope: str, sites: str | None, forms: str | None,
                      subjects: str | None, override_reason: str | None) -> LockIn:
    """A :class:`LockIn` from a page's fields (lists separated by spaces, commas or lines)."""
    try:
        return LockIn(scope=scope, sites=_words(sites), forms=_words(forms),  # type: ignore[arg-type]
                      subjects=_words(subjects), override_reason=override_reason or None)
    except ValueError as exc:
        raise InvalidInput(_("the lock form is not valid: {value}").format(
                               value=str(exc).splitlines()[0]), field="scope") from None


def unlock_in_from_form(*, changes: str, reason: str, planned_date: str,
                        period_hours: str) -> UnlockIn:
    """An :class:`UnlockIn` from a page: one change per line, ``SUBJECT [FORM [FIELD …]]``."""
    rows = []
    for line in changes.splitlines():
        w = _words(line)
        if w:
            rows.append(ChangeIn(subject=w[0][:20], form=w[1][:64] if len(w) > 1 else None,
                                 fields=[f[:64] for f in w[2:]] or None))
    try:
        day = dt.date.fromisoformat(planned_date.strip())
    except ValueError:
        raise InvalidInput(_("planned_date: YYYY-MM-DD"),
                           field="planned_date") from None
    if not period_hours.strip().isdigit():
        raise InvalidInput(_("period_hours: a whole number of hours"),
                           field="period_hours")
    try:
        return UnlockIn(changes=rows, reason=reason, planned_date=day,
                        period_hours=int(period_hours))
    except ValueError as exc:
        raise InvalidInput(_("the unlock request is not valid: {value}").format(
                               value=str(exc).splitlines()[0]),
                           field="period_hours") from None


# ---- output shapes ----------------------------------------------------------------------------


class LockOut(BaseModel):
    id: str
    scope: str
    label: str
    set_by: str
    set_at: dt.datetime
    checkpoint_size: int
    checkpoint_root: str
    snapshot_sha256: str
    snapshot_values: int
    report_counts: dict[str, Any] | None
    override_reason: str | None
    ledger_seq: int


class ChangeOut(BaseModel):
    subject: str | None
    form: str | None
    fields: list[str] | None


class UnlockRequestOut(BaseModel):
    id: str
    status: str
    changes: list[ChangeOut]
    reason: str
    planned_date: str
    period_hours: int
    content_sha256: str
    requested_by: str
    requested_at: dt.datetime
    effective_at: dt.datetime | None
    ends_at: dt.datetime | None
    closed_at: dt.datetime | None
    closed_by: str | None
    close_reason: str | None
    relock_snapshot_sha256: str | None


class SignoffOut(BaseModel):
    role: str
    signature: str


class UnlockDetailOut(UnlockRequestOut):
    """The request, the exact text signers sign (``content``) and its sign-offs."""

    content: str
    content_ok: bool
    signoffs: list[SignoffOut]
    missing_roles: list[str]
    invalidated_signatures: list[str]


class LockSettingsOut(BaseModel):
    allow_query_answers: bool


class LockPanelOut(BaseModel):
    locks: list[LockOut]
    unlock_requests: list[UnlockRequestOut]
    settings: LockSettingsOut


class ReportFormOut(BaseModel):
    subject: str
    event: str
    repeat: int
    form: str


class ReportFieldsOut(ReportFormOut):
    fields: list[str]


class ReportQueryOut(BaseModel):
    subject: str
    event: str
    form: str
    item: str
    status: str
    id: str


class PrelockReportOut(BaseModel):
    """What is still open in the data one lock would cover."""

    label: str
    open_queries: list[ReportQueryOut]
    unverified_forms: list[ReportFieldsOut]
    incomplete_forms: list[ReportFormOut]
    changed_after_verification: list[ReportFieldsOut]
    counts: dict[str, int]
    open: int
