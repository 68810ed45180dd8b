from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow
from studies.accounts.models import new_id


class Subject(SQLModel, table=True):
    """A subject of a study. Holds no identity: no name, ID number or phone (§11.3.4.4 d)."""

    __tablename__ = "subject"

    id: str = Field(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    site_id: str = Field(sa_column=Column(
        String(36), ForeignKey("site.id"), nullable=False, index=True))
    code: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    status: str = Field(default="enrolled", sa_column=Column(String(20), nullable=False))
    enrolled_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    enrolled_by: str = Field(sa_column=Column(String(100), nullable=False))
