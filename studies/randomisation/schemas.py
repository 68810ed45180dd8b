"""Output shapes of randomisation and unblinding."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField


class SchemeOut(BaseModel):
    method: str
    arms: list[str]
    ratio: list[int]
    block_sizes: list[int]
    factors: list[dict[str, Any]]


class ListImportedOut(BaseModel):
    rows: int


class AllocationOut(BaseModel):
    """An allocation; ``arm`` reads "sealed" while the study is blinded."""

    subject: str
    site: str
    stratum: str
    seq: int
    arm: str
    randomised_by: str
    randomised_at: dt.datetime


class UnblindingOut(BaseModel):
    id: str
    kind: str
    status: str
    reason: str
    requested_by: str
    requested_at: dt.datetime
    effective_at: dt.datetime | None
    content_sha256: str


# ---- input shapes ----------------------------------------------------------------------------

class FactorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form: str = PField(max_length=64)
    item: str = PField(max_length=64)


class SchemeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["blocks", "list"]
    arms: list[str] = PField(min_length=2, max_length=6)
    ratio: list[int] | None = PField(default=None, max_length=6)
    block_sizes: list[int] = PField(default_factory=list, max_length=5)
    factors: list[FactorIn] = PField(default_factory=list, max_length=2)
