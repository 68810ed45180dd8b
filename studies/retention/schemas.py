"""Input and output shapes of the retention review."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["keep", "archive", "destroy"]


class EndDateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ended_on: dt.date
    reason: str = Field(min_length=1, max_length=2000)


class EndDateOut(BaseModel):
    study: str
    ended_on: dt.date
    first_review_due: dt.date


class DueReviewOut(BaseModel):
    study: str
    title_en: str
    title_zh: str
    ended_on: dt.date
    due_on: dt.date
    review_number: int
    last_decision: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due_on: dt.date
    decision: Decision
    reason: str = Field(min_length=1, max_length=4000)
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    totp: str | None = Field(default=None, max_length=20)


class ReviewOut(BaseModel):
    study: str
    due_on: dt.date
    decision: str
    reason: str
    decided_by: str
    decided_at: dt.datetime
    signature: str
    next_review_due: dt.date
