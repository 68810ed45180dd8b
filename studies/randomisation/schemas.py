"""Output shapes of randomisation and unblinding."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


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
