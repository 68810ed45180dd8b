"""The job table: one row per piece of queued work.

A job is ``queued`` until a runner claims it (``running``, ``claimed_by``, a lease that the
runner's heartbeat extends), then ``done`` or ``failed``. A running job whose lease expired
belongs to a runner that died; the next claim takes it again (``attempts`` counts the claims).
``dedupe_key`` makes a periodic job (one checkpoint round per interval) queued once however
many runners schedule it.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Integer, String, Text
from sqlmodel import Field

from audit_trail.base import UTCDateTime
from studies.kernel.models import CreatedAt, IdTable

JOB_STATES = ("queued", "running", "done", "failed")


class Kind(StrEnum):
    """Every kind of job; the runner (``edc/jobs/runner.py``) has one handler per member."""

    EXTRACT_BUILD = "extract.build"  # payload: request_id
    CHECKPOINT = "checkpoint"        # sign a checkpoint if the ledger grew; submit to witnesses
    SWEEP = "sweep"                  # end expired sessions, prune throttle rows and old jobs
    BACKUP = "backup"                # payload: out (directory)


class Job(IdTable, CreatedAt, table=True):
    __tablename__ = "job"

    kind: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    # What the job is about (an extract request's id), for the pages that show its progress.
    ref: str | None = Field(default=None, sa_column=Column(String(64), nullable=True,
                                                           index=True))
    payload: dict[str, Any] = Field(default_factory=dict,
                                    sa_column=Column(JSON(), nullable=False))
    state: str = Field(default="queued", sa_column=Column(String(10), nullable=False,
                                                          index=True))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    max_attempts: int = Field(default=3, sa_column=Column(Integer(), nullable=False))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(120), nullable=True))
    heartbeat_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    lease_expires_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime,
                                                 nullable=True)
    progress: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    finished_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    dedupe_key: str | None = Field(default=None, sa_column=Column(String(120), nullable=True,
                                                                  unique=True))
