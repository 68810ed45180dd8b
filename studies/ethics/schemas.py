"""Output shapes of the ethics committee's desk (committees, approvals, consent waivers)."""

from __future__ import annotations

from pydantic import BaseModel


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
