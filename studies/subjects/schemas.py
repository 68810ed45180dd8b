"""Output shapes of enrolment and the code index."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class SubjectOut(BaseModel):
    code: str
    study: str
    site: str
    status: str
    enrolled_at: dt.datetime
    enrolled_by: str


class IdentityOut(BaseModel):
    name: str
    resident_id: str
    phone: str | None
    medical_record_number: str | None
    date_of_birth: dt.date
    address: str | None


class ByCodeOut(BaseModel):
    found: bool
    code: str
    study: str | None = None
    identity: IdentityOut | None = None


class Match(BaseModel):
    study: str
    code: str


class ByIdentityOut(BaseModel):
    found: bool
    matches: list[Match]


class LookupOut(BaseModel):
    seq: int
    time: str
    actor: str
    action: str
    code: str | None
    study: str | None
    reason: str | None
    result: str | None


class DisclosureOut(BaseModel):
    """One extract that held the subject's data (§7 g)."""

    request_id: str
    study: str
    recipient_org: str
    tier: str
    fields: list[str]
    disclosed_at: dt.datetime
