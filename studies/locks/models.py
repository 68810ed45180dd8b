"""Tables of database lock and unlock. Nothing here is ever deleted: a lock stays on record for
good; an unlock request moves pending → active → relocked (or withdrawn / rejected) and keeps
every field it was raised with.

- ``data_lock`` — a lock of a study, a site, one form across the study, or a list of subjects,
  with who set it and when, the signed ledger checkpoint it took and the SHA-256 snapshot hash
  of the locked current values, and the pre-lock report (with the override reason if items
  were open).
- ``unlock_request`` — the changes to be made (subjects / forms / fields), reason, planned date
  and period; takes effect after three sign-offs (``studies.signoff``).
- ``signature_invalidation`` — a signature on data that an unlock reopened.
- ``lock_settings`` — a study's lock settings (may queries be answered while locked).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
)
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.models import IdTable

LOCK_SCOPES = ("study", "site", "form", "subjects")
UNLOCK_STATUSES = ("pending", "active", "relocked", "withdrawn", "rejected")


class LockSettings(SQLModel, table=True):
    __tablename__ = "lock_settings"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), primary_key=True))
    allow_query_answers: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))


class DataLock(IdTable, table=True):
    __tablename__ = "data_lock"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    scope: str = Field(sa_column=Column(String(10), nullable=False))
    site_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("site.id"), nullable=True))
    form_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("crf_form.id"), nullable=True))
    subject_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON(),
                                                                          nullable=False))
    label: str = Field(sa_column=Column(String(500), nullable=False))
    set_by: str = Field(sa_column=Column(String(100), nullable=False))
    set_at: dt.datetime = Field(default_factory=utcnow,
                                sa_column=Column(UTCDateTime(), nullable=False))
    checkpoint_size: int = Field(sa_column=Column(Integer(), nullable=False))
    checkpoint_root: str = Field(sa_column=Column(String(64), nullable=False))
    snapshot_hash: str = Field(sa_column=Column(String(64), nullable=False))
    snapshot_values: int = Field(sa_column=Column(Integer(), nullable=False))
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(),
                                                                          nullable=False))
    override_reason: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    ledger_seq: int = Field(sa_column=Column(Integer(), nullable=False))


class UnlockRequest(IdTable, table=True):
    __tablename__ = "unlock_request"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    # [{"subject_id", "subject", "form_id", "form", "fields": [..] | null}]
    changes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(
        JSON(), nullable=False))
    reason: str = Field(sa_column=Column(Text(), nullable=False))
    planned_date: dt.date = Field(sa_column=Column(Date(), nullable=False))
    period_hours: int = Field(sa_column=Column(Integer(), nullable=False))
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(10), nullable=False))
    requested_by: str = Field(sa_column=Column(String(100), nullable=False))
    requested_at: dt.datetime = Field(default_factory=utcnow,
                                      sa_column=Column(UTCDateTime(), nullable=False))
    effective_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                            nullable=True))
    ends_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                       nullable=True))
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                         nullable=True))
    closed_by: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    close_reason: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    relock_snapshot_hash: str | None = Field(default=None, sa_column=Column(String(64),
                                                                            nullable=True))


class SignatureInvalidation(IdTable, table=True):
    __tablename__ = "signature_invalidation"

    signature_id: str = Field(sa_column=Column(String(36), ForeignKey("e_signature.id"),
                                               nullable=False, index=True))
    unlock_id: str = Field(sa_column=Column(String(36), ForeignKey("unlock_request.id"),
                                            nullable=False))
    at: dt.datetime = Field(default_factory=utcnow,
                            sa_column=Column(UTCDateTime(), nullable=False))


