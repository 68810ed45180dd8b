from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Column, Date, ForeignKey, String, Text, false, true
from sqlmodel import Field

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.models import CreatedAt, IdTable

GENDERS = ("female", "male", "other")
AFFILIATIONS = ("internal", "external")
DECISIONS = ("approved", "approved_with_conditions", "rejected")
APPROVING = ("approved", "approved_with_conditions")
WAIVER_GROUNDS = (
    "post_market_deidentified",  # §11.3.4.2 a 1)
    "public_interest_statistics",  # §11.3.4.2 a 2)
    "retrospective_unreachable",  # §11.3.4.2 b 1)
    "retrospective_prior_consent",  # §11.3.4.2 b 2)
)
WAIVER_STATUSES = ("requested", "approved", "rejected")


class EthicsCommittee(IdTable, CreatedAt, table=True):
    """An ethics committee (伦理委员会) of an institution."""

    __tablename__ = "ethics_committee"

    name: str = Field(sa_column=Column(String(300), nullable=False, unique=True))
    institution: str = Field(sa_column=Column(String(300), nullable=False))


class CommitteeMember(IdTable, CreatedAt, table=True):
    """A member; ``active`` is cleared when they leave (rows are kept for the record)."""

    __tablename__ = "committee_member"

    committee_id: str = Field(sa_column=Column(
        String(36), ForeignKey("ethics_committee.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    gender: str = Field(sa_column=Column(String(10), nullable=False))
    affiliation: str = Field(sa_column=Column(String(10), nullable=False))
    expertise: str = Field(sa_column=Column(String(200), nullable=False))
    active: bool = Field(default=True, sa_column=Column(
        Boolean(), nullable=False, server_default=true()))


class EthicsApproval(IdTable, table=True):
    """A committee's decision on one protocol version (§11.3.4.2). Never changed."""

    __tablename__ = "ethics_approval"

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    protocol_version_id: str = Field(sa_column=Column(
        String(36), ForeignKey("protocol_version.id"), nullable=False, index=True))
    committee_id: str = Field(sa_column=Column(
        String(36), ForeignKey("ethics_committee.id"), nullable=False))
    reference: str = Field(sa_column=Column(String(100), nullable=False))
    decision: str = Field(sa_column=Column(String(30), nullable=False))
    decided_on: dt.date = Field(sa_column=Column(Date(), nullable=False))
    expires_on: dt.date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    conditions: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    # Whether the committee approved identifiable use of the data (a RIF extract, §11.3.4.2).
    identifiable_use: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    recorded_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    recorded_by: str = Field(sa_column=Column(String(100), nullable=False))


class ConsentWaiver(IdTable, table=True):
    """A consent waiver (知情同意豁免) with its ground from §11.3.4.2 a/b; effective only once
    the committee approves it."""

    __tablename__ = "consent_waiver"

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    ground: str = Field(sa_column=Column(String(40), nullable=False))
    justification: str = Field(sa_column=Column(Text(), nullable=False))
    prior_consent_reference: str | None = Field(
        default=None, sa_column=Column(String(300), nullable=True))
    status: str = Field(default="requested", sa_column=Column(String(20), nullable=False))
    requested_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    requested_by: str = Field(sa_column=Column(String(100), nullable=False))
    committee_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("ethics_committee.id"), nullable=True))
    decision_reference: str | None = Field(
        default=None, sa_column=Column(String(100), nullable=True))
    decided_on: dt.date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    decided_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    decided_by: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
