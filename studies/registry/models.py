from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field

from audit_trail.base import UTCDateTime
from studies.kernel.models import CreatedAt, IdTable

DESIGNS = ("prospective", "retrospective")
STUDY_STATUSES = ("draft", "active", "closed")


class Study(IdTable, CreatedAt, table=True):
    """A study, known everywhere by its protocol number (``code``).

    The design flags live here because they decide which consent waivers can fit the study
    (§11.3.4.2 a/b); the protocol's content lives in :class:`ProtocolVersion`, so an amendment is
    a new version that needs its own ethics approval.
    """

    __tablename__ = "study"

    code: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    title_zh: str = Field(sa_column=Column(String(500), nullable=False))
    title_en: str = Field(sa_column=Column(String(500), nullable=False))
    status: str = Field(default="draft", sa_column=Column(String(20), nullable=False))
    sponsor: str = Field(default="", sa_column=Column(
        String(300), nullable=False, server_default=""))
    blinded: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    design: str = Field(default="prospective", sa_column=Column(
        String(20), nullable=False, server_default="prospective"))
    post_market: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    real_world_data: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    public_interest: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))


class Site(IdTable, table=True):
    """A site of a study: hospital, department and medical group (全院/科室/医疗组)."""

    __tablename__ = "site"
    __table_args__ = (UniqueConstraint("study_id", "code", name="site_study_code"),)

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    code: str = Field(sa_column=Column(String(10), nullable=False))  # e.g. "S01"
    hospital: str = Field(sa_column=Column(String(200), nullable=False))
    department: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    medical_group: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class ProtocolVersion(IdTable, CreatedAt, table=True):
    """One version of a study's protocol (§11.3.4.2: purpose and its legal basis, research
    content, data types, numbers, expected results). Rows are never changed: an amendment is a
    new version, and the newest version is the one in force once approved."""

    __tablename__ = "protocol_version"
    __table_args__ = (UniqueConstraint("study_id", "number", name="protocol_version_number"),)

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    number: int = Field(sa_column=Column(Integer(), nullable=False))
    label: str = Field(sa_column=Column(String(40), nullable=False))  # "1.0", "2.1"
    version_date: dt.date = Field(sa_column=Column(Date(), nullable=False))
    purpose: str = Field(sa_column=Column(Text(), nullable=False))
    legal_basis: str = Field(sa_column=Column(Text(), nullable=False))
    research_content: str = Field(sa_column=Column(Text(), nullable=False))
    data_types: str = Field(sa_column=Column(Text(), nullable=False))
    planned_subjects: int = Field(sa_column=Column(Integer(), nullable=False))
    planned_records: int = Field(sa_column=Column(Integer(), nullable=False))
    expected_results: str = Field(sa_column=Column(Text(), nullable=False))
    data_sharing_plan: str = Field(sa_column=Column(Text(), nullable=False))
    amendment_summary: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))


OWNER_HANDOVER_STATUSES = ("pending", "accepted", "withdrawn")


class OwnerHandover(IdTable, CreatedAt, table=True):
    """The study's data owner (数据责任人, §11.3.4.4 a) passing from one person to the next.
    The first naming and each handover are proposed and signed by the outgoing owner (by the
    study's manager for the first naming, by an administrator when the outgoing owner has
    left) and take effect once the incoming person accepts and signs; the current owner is the
    incoming person of the latest accepted handover."""

    __tablename__ = "owner_handover"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    from_username: str | None = Field(default=None, sa_column=Column(String(100),
                                                                      nullable=True))
    to_username: str = Field(sa_column=Column(String(100), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(10), nullable=False))
    proposed_by: str = Field(sa_column=Column(String(100), nullable=False))
    proposed_signature_id: str = Field(sa_column=Column(String(36), nullable=False))
    accepted_at: dt.datetime | None = Field(default=None, sa_column=Column(
        UTCDateTime(), nullable=True))
    accepted_signature_id: str | None = Field(default=None, sa_column=Column(
        String(36), nullable=True))
