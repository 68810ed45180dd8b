"""Output shapes of consent (consent forms, records, withdrawals, a study's readiness)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from studies.consent.models import (
    SCOPES,
)
from studies.ethics.schemas import ApprovalOut


class ConsentFormOut(BaseModel):
    id: str
    version: str
    number: int
    consent_type: str
    text_zh: str
    text_en: str
    approval_id: str
    requires_reconsent: bool
    created_at: str


class ReadinessOut(BaseModel):
    """Whether enrolment and entry are open, and if not, why."""

    open: bool
    reason: str | None
    approval: ApprovalOut | None


class ConsentRecordedOut(BaseModel):
    id: str
    consent_type: str
    scopes: list[str]
    given_at: str
    obtained_by: str
    replaces_id: str | None


class WithdrawalOut(BaseModel):
    scope: str | None
    withdrawn_at: str
    recorded_by: str
    reason: str | None


class ConsentHistoryOut(BaseModel):
    id: str
    consent_type: str
    form_version: str | None
    waiver_id: str | None
    scopes: list[str]
    given_at: str
    obtained_by: str
    replaces_id: str | None
    withdrawals: list[WithdrawalOut]


class WithdrawnOut(BaseModel):
    withdrawn: list[str]
    withdrawn_at: str


# ---- input shapes ----------------------------------------------------------------------------

class ConsentFormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = PField(min_length=1, max_length=40)
    consent_type: str = PField(max_length=20)  # informed / broad
    text_zh: str = PField(min_length=1, max_length=200_000)
    text_en: str = PField(min_length=1, max_length=200_000)
    approval_id: str = PField(max_length=36)
    requires_reconsent: bool = False


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    consent_type: str = PField(max_length=20)
    form_id: str | None = PField(default=None, max_length=36)
    waiver_id: str | None = PField(default=None, max_length=36)
    scopes: list[str] = PField(default_factory=list, max_length=len(SCOPES))
    given_at: dt.datetime


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scopes: list[str] | None = PField(default=None, max_length=len(SCOPES))  # None: whole
    withdrawn_at: dt.datetime
    reason: str | None = PField(default=None, max_length=2000)
