from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow
from studies.accounts.models import new_id


class Study(SQLModel, table=True):
    """A study, known everywhere by its protocol number (``code``)."""

    __tablename__ = "study"

    id: str = Field(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    code: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    title_zh: str = Field(sa_column=Column(String(500), nullable=False))
    title_en: str = Field(sa_column=Column(String(500), nullable=False))
    status: str = Field(default="draft", sa_column=Column(String(20), nullable=False))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Site(SQLModel, table=True):
    """A site of a study: hospital, department and medical group (全院/科室/医疗组)."""

    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("study_id", "code", name="site_study_code"),)

    id: str = Field(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    code: str = Field(sa_column=Column(String(10), nullable=False))  # e.g. "S01"
    hospital: str = Field(sa_column=Column(String(200), nullable=False))
    department: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    medical_group: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
