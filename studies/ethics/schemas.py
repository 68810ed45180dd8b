"""Output shapes of the ethics committee's desk (committees, approvals, consent waivers)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from studies.kernel.schemas import DB_INT_MAX


class MemberOut(BaseModel):
    id: str
    name: str
    gender: str
    affiliation: str
    expertise: str
    active: bool


class CommitteeOut(BaseModel):
    id: str
    name: str
    institution: str
    members: list[MemberOut]
    meets_11_3_2_e: bool
    problems: list[str]


class ApprovalOut(BaseModel):
    id: str
    protocol_version: int | None
    protocol_label: str | None
    committee: str | None
    reference: str
    decision: str
    decided_on: str
    expires_on: str | None
    conditions: str | None
    identifiable_use: bool
    recorded_by: str


class WaiverOut(BaseModel):
    id: str
    ground: str
    clause: str
    justification: str
    prior_consent_reference: str | None
    status: str
    requested_by: str
    decision_reference: str | None
    decided_on: str | None


# ---- input shapes ----------------------------------------------------------------------------

class CommitteeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = PField(min_length=1, max_length=300)
    institution: str = PField(min_length=1, max_length=300)


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = PField(min_length=1, max_length=200)
    gender: str = PField(max_length=10)
    affiliation: str = PField(max_length=10)
    expertise: str = PField(min_length=1, max_length=200)


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol_version: int = PField(ge=1, le=DB_INT_MAX)
    committee_id: str = PField(max_length=36)
    reference: str = PField(min_length=1, max_length=100)
    decision: str = PField(max_length=30)
    decided_on: dt.date
    expires_on: dt.date | None = None
    conditions: str | None = PField(default=None, max_length=20000)
    identifiable_use: bool = PField(default=False, description=(
        "the committee approved identifiable use of the data (what a RIF extract needs, "
        "§11.3.4.2)"))


class WaiverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ground: str = PField(max_length=40)
    justification: str = PField(min_length=1, max_length=20000)
    data_deidentified: bool
    prior_consent_reference: str | None = PField(default=None, max_length=300)


class WaiverDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    committee_id: str = PField(max_length=36)
    decision: str = PField(max_length=20)  # approved / rejected
    reference: str = PField(min_length=1, max_length=100)
    decided_on: dt.date
