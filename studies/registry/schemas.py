"""Output shapes of the study registry (studies, protocol versions, sites)."""

from __future__ import annotations

from pydantic import BaseModel


class StudyOut(BaseModel):
    id: str
    code: str
    title_zh: str
    title_en: str
    status: str
    sponsor: str
    blinded: bool
    design: str
    post_market: bool
    real_world_data: bool
    public_interest: bool


class ProtocolVersionOut(BaseModel):
    id: str
    number: int
    amendment_summary: str | None
    created_at: str
    created_by: str
    label: str
    version_date: str
    purpose: str
    legal_basis: str
    research_content: str
    data_types: str
    planned_subjects: int
    planned_records: int
    expected_results: str
    data_sharing_plan: str


class SiteOut(BaseModel):
    id: str
    code: str
    hospital: str
    department: str | None
    medical_group: str | None
