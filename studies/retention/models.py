"""Tables of the retention review: when each study ended, and each signed review decision."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, ForeignKey, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime
from studies.kernel.models import CreatedAt, IdTable


class StudyEnd(CreatedAt, SQLModel, table=True):
    """The date a study ended (last subject's last visit, or as the protocol defines it)."""

    __tablename__ = "study_end"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), primary_key=True))
    ended_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    recorded_by: str = Field(sa_column=Column(String(200), nullable=False))


class RetentionReview(IdTable, SQLModel, table=True):
    """One review decision, for the review due on ``due_on``: keep, archive or destroy."""

    __tablename__ = "retention_review"
    __table_args__ = (UniqueConstraint("study_id", "due_on", name="retention_review_due"),)

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    due_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    decision: str = Field(sa_column=Column(String(20), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    decided_by: str = Field(sa_column=Column(String(200), nullable=False))
    decided_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    signature_id: str = Field(sa_column=Column(String(36), nullable=False))
