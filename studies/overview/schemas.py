"""Output shapes of the overviews: a study's set-up, the consent list, a use decision and the
ethics committee's desk."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from studies.consent.schemas import ConsentFormOut, ReadinessOut
from studies.ethics.schemas import ApprovalOut, CommitteeOut, WaiverOut
from studies.forms.schemas import EventOut, FormSummaryOut
from studies.registry.schemas import ProtocolIn, ProtocolVersionOut, SiteOut, StudyOut


class StudyOverviewOut(BaseModel):
    study: StudyOut
    readiness: ReadinessOut
    protocol_versions: list[ProtocolVersionOut]
    sites: list[SiteOut]
    approvals: list[ApprovalOut]
    waivers: list[WaiverOut]
    consent_forms: list[ConsentFormOut]
    forms: list[FormSummaryOut]
    events: list[EventOut]


class ConsentSubjectOut(BaseModel):
    subject_id: str
    code: str
    scopes: list[str]
    entry_allowed: bool
    reason: str | None


class ConsentOverviewOut(BaseModel):
    study: StudyOut
    readiness: ReadinessOut
    subjects: list[ConsentSubjectOut]


class UseDecisionOut(BaseModel):
    subject: str
    scope: str
    at: str
    allowed: bool
    reason: str | None


class EthicsStudyOut(BaseModel):
    study: StudyOut
    protocol_versions: list[ProtocolVersionOut]
    approvals: list[ApprovalOut]
    waivers: list[WaiverOut]
    readiness: ReadinessOut


class EthicsOverviewOut(BaseModel):
    committees: list[CommitteeOut]
    studies: list[EthicsStudyOut]


# ---- input shapes ----------------------------------------------------------------------------

class AmendmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str = PField(min_length=1, max_length=20000)
    protocol: ProtocolIn
