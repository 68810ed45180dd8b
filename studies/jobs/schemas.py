"""What the JSON API shows of the job queue (``GET /api/v1/jobs``)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class JobOut(BaseModel):
    id: str
    kind: str
    ref: str | None
    state: str
    progress: int
    attempts: int
    max_attempts: int
    claimed_by: str | None
    heartbeat_at: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None


class RunnerOut(BaseModel):
    name: str
    heartbeat_at: dt.datetime | None


class JobsOut(BaseModel):
    counts: dict[str, int]
    oldest_queued: dt.datetime | None
    stalled: int
    runners: list[RunnerOut]
    jobs: list[JobOut]
