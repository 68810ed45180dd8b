"""Output shapes of consent (consent forms, records, withdrawals, a study's readiness)."""

from __future__ import annotations

from pydantic import BaseModel

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
