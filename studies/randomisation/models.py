"""Tables of randomisation. The arm of each subject is stored sealed (encrypted under a key
derived from the key directory) so that the database alone does not reveal the allocation of a
blinded study; the ledger holds for each assignment a commitment (SHA-256 of arm and nonce) in
blinded studies, the arm itself in open-label ones.

- ``randomisation_scheme`` — one per study: arms and ratio, method (``blocks``: permuted blocks
  from a seed; ``list``: an imported allocation list), block sizes, up to two stratification
  factors read from form data (stratification by site is always on).
- ``allocation_slot`` — rows of an imported allocation list (stratum, sequence, sealed arm).
- ``allocation`` — one per randomised subject.
- ``unblinding`` — a study unblinding (needs PI and statistician sign-offs, after lock) or an
  emergency unblinding of one subject by the PI.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.models import CreatedAt, IdTable


class RandomisationScheme(CreatedAt, table=True):
    __tablename__ = "randomisation_scheme"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), primary_key=True))
    method: str = Field(sa_column=Column(String(10), nullable=False))  # blocks / list
    arms: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    ratio: list[int] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    block_sizes: list[int] = Field(default_factory=list, sa_column=Column(JSON(),
                                                                          nullable=False))
    # [{"form": name, "item": name}] — at most two
    factors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(
        JSON(), nullable=False))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))


class AllocationSlot(IdTable, table=True):
    __tablename__ = "allocation_slot"
    __table_args__ = (UniqueConstraint("study_id", "stratum", "seq", name="allocation_slot_key"),)

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    stratum: str = Field(sa_column=Column(String(300), nullable=False))
    seq: int = Field(sa_column=Column(Integer(), nullable=False))
    arm_sealed: str = Field(sa_column=Column(String(200), nullable=False))


class Allocation(IdTable, table=True):
    __tablename__ = "allocation"
    __table_args__ = (UniqueConstraint("study_id", "stratum", "seq", name="allocation_seq"),)

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    subject_id: str = Field(sa_column=Column(String(36), ForeignKey("subject.id"),
                                             nullable=False, unique=True))
    stratum: str = Field(sa_column=Column(String(300), nullable=False))
    seq: int = Field(sa_column=Column(Integer(), nullable=False))
    arm_sealed: str = Field(sa_column=Column(String(200), nullable=False))
    commitment: str = Field(sa_column=Column(String(64), nullable=False))
    randomised_by: str = Field(sa_column=Column(String(100), nullable=False))
    randomised_at: dt.datetime = Field(default_factory=utcnow,
                                       sa_column=Column(UTCDateTime(), nullable=False))
    ledger_seq: int = Field(sa_column=Column(Integer(), nullable=False))


class Unblinding(IdTable, table=True):
    __tablename__ = "unblinding"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    kind: str = Field(sa_column=Column(String(10), nullable=False))  # study / emergency
    subject_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("subject.id"), nullable=True))
    reason: str = Field(sa_column=Column(Text(), nullable=False))
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(10), nullable=False))  # pending/effective/withdrawn
    requested_by: str = Field(sa_column=Column(String(100), nullable=False))
    requested_at: dt.datetime = Field(default_factory=utcnow,
                                      sa_column=Column(UTCDateTime(), nullable=False))
    effective_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                            nullable=True))
