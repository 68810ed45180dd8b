"""Output shapes of the study registry (studies, protocol versions, sites)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField


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


# ---- input shapes ----------------------------------------------------------------------------

class ProtocolIn(BaseModel):
    """The protocol's content (§11.3.4.2): one version of it."""

    model_config = ConfigDict(extra="forbid")
    label: str = PField(min_length=1, max_length=40)
    version_date: dt.date
    purpose: str = PField(min_length=1, max_length=20000)
    legal_basis: str = PField(min_length=1, max_length=20000)
    research_content: str = PField(min_length=1, max_length=50000)
    data_types: str = PField(min_length=1, max_length=20000)
    planned_subjects: int = PField(ge=1, le=10_000_000)
    planned_records: int = PField(ge=1, le=1_000_000_000)
    expected_results: str = PField(min_length=1, max_length=20000)
    data_sharing_plan: str = PField(min_length=1, max_length=20000)


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = PField(min_length=2, max_length=10)
    hospital: str = PField(min_length=1, max_length=200)
    department: str | None = PField(default=None, max_length=200)
    medical_group: str | None = PField(default=None, max_length=200)


class StudyIn(BaseModel):
    """Registration of a study: identity, design flags and the first protocol version."""

    model_config = ConfigDict(extra="forbid")
    code: str = PField(min_length=2, max_length=100)
    title_zh: str = PField(min_length=1, max_length=500)
    title_en: str = PField(min_length=1, max_length=500)
    sponsor: str = PField(min_length=1, max_length=300)
    blinded: bool = False
    design: str = PField(default="prospective", max_length=20)
    post_market: bool = False
    real_world_data: bool = False
    public_interest: bool = False
    protocol: ProtocolIn
    sites: list[SiteIn] = PField(default_factory=list, max_length=200)
