"""Tables of data entry. Append-only except two pointers that are derived and checked:

- ``form_record`` — one per (subject, event, event repeat, form), pinned to the form version it
  was first entered under. ``version`` is the number of its newest record version; a save
  moves it with ``UPDATE … WHERE version = <the newest version the save read>``, so of two
  saves racing on the same version exactly one wins and the other gets a conflict; a save
  based on an older version is merged onto the newest only when no field it changes was
  changed since (no lost update).
- ``form_record_version`` — one row per save (who, when, status, ledger sequence).
- ``item_value_version`` — one row per changed item per save: the value after (JSON; NULL for
  empty), the value before, and the reason. Nothing here is ever updated or deleted.
- ``item_value_current`` — the current value of each item, materialised from the versions;
  :func:`studies.entry.service.verify_current` proves it equals what the versions (and the
  ledger) say.
- ``sdv_mark`` — source-data verification events (verified / cleared), append-only.
- ``data_query`` and ``query_message`` — queries on a field and their thread.
- ``entry_file`` — uploads of file fields (the bytes outside the database, by SHA-256).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime
from studies.kernel.i18n import Label, _l
from studies.kernel.models import CreatedAt, IdTable

SDV_MODES = ("all", "key", "sample", "none")
RECORD_STATUSES = ("complete", "incomplete")
QUERY_STATUSES = ("open", "answered", "closed")
# The study's standard reasons for a change (codes → labels); free text is accepted too.
STANDARD_REASONS: dict[str, Label] = {
    "transcription_error": _l("Transcription error"),
    "new_source_document": _l("New source document"),
    "query_response": _l("Query response"),
    "data_entry_error": _l("Data entry error"),
    "late_information": _l("Information received later"),
}


class EntrySettings(SQLModel, table=True):
    """A study's data-entry settings (defaults apply while a study has no row)."""

    __tablename__ = "entry_settings"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), primary_key=True))
    allow_incomplete: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    sdv_mode: str = Field(default="all", sa_column=Column(String(10), nullable=False))
    sdv_key_items: list[str] = Field(default_factory=list, sa_column=Column(JSON(),
                                                                            nullable=False))
    sdv_sample_percent: int = Field(default=100, sa_column=Column(Integer(), nullable=False))
    reasons: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON(),
                                                                           nullable=False))
    # The roles the study counts as treating clinicians, who alone see level-5 values (§6.2 e);
    # None: studies.kernel.roles.DEFAULT_TREATING_ROLES.
    treating_roles: list[str] | None = Field(default=None, sa_column=Column(JSON(),
                                                                           nullable=True))


class UnmaskGrant(IdTable, CreatedAt, table=True):
    """A time-limited grant letting one user see a study's level-5 values (§6.2 e), given with
    a reason by someone holding ``unmask.grant``. Never updated or deleted: it lapses."""

    __tablename__ = "unmask_grant"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    user_id: str = Field(sa_column=Column(String(36), ForeignKey("user_account.id"),
                                          nullable=False, index=True))
    reason: str = Field(sa_column=Column(Text(), nullable=False))
    granted_by: str = Field(sa_column=Column(String(100), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class FormRecord(IdTable, CreatedAt, table=True):
    __tablename__ = "form_record"
    __table_args__ = (UniqueConstraint("subject_id", "event_name", "event_repeat", "form_id",
                                       name="form_record_key"),)

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    subject_id: str = Field(sa_column=Column(String(36), ForeignKey("subject.id"),
                                             nullable=False, index=True))
    event_name: str = Field(sa_column=Column(String(64), nullable=False))
    event_repeat: int = Field(default=1, sa_column=Column(Integer(), nullable=False))
    form_id: str = Field(sa_column=Column(String(36), ForeignKey("crf_form.id"), nullable=False,
                                          index=True))
    form_version_id: str = Field(sa_column=Column(String(36), ForeignKey("crf_form_version.id"),
                                                  nullable=False))
    version: int = Field(sa_column=Column(Integer(), nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))


class RecordVersion(IdTable, table=True):
    __tablename__ = "form_record_version"
    __table_args__ = (UniqueConstraint("record_id", "version", name="form_record_version_key"),)

    record_id: str = Field(sa_column=Column(String(36), ForeignKey("form_record.id"),
                                            nullable=False, index=True))
    version: int = Field(sa_column=Column(Integer(), nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    saved_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    saved_by: str = Field(sa_column=Column(String(100), nullable=False))
    client: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    ledger_seq: int = Field(sa_column=Column(Integer(), nullable=False))
    batch: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))


class ValueVersion(IdTable, table=True):
    __tablename__ = "item_value_version"
    __table_args__ = (UniqueConstraint("record_id", "item_name", "version",
                                       name="item_value_version_key"),)

    record_id: str = Field(sa_column=Column(String(36), ForeignKey("form_record.id"),
                                            nullable=False, index=True))
    item_name: str = Field(sa_column=Column(String(64), nullable=False))
    version: int = Field(sa_column=Column(Integer(), nullable=False))
    before: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    after: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    saved_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    saved_by: str = Field(sa_column=Column(String(100), nullable=False))


class CurrentValue(SQLModel, table=True):
    __tablename__ = "item_value_current"

    record_id: str = Field(sa_column=Column(String(36), ForeignKey("form_record.id"),
                                            primary_key=True))
    item_name: str = Field(sa_column=Column(String(64), primary_key=True))
    value: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    version: int = Field(sa_column=Column(Integer(), nullable=False))


class SdvMark(IdTable, table=True):
    __tablename__ = "sdv_mark"
    __table_args__ = (Index("sdv_mark_record_item", "record_id", "item_name"),)

    record_id: str = Field(sa_column=Column(String(36), ForeignKey("form_record.id"),
                                            nullable=False))
    item_name: str = Field(sa_column=Column(String(64), nullable=False))
    kind: str = Field(sa_column=Column(String(10), nullable=False))  # verified / cleared
    value_version: int = Field(sa_column=Column(Integer(), nullable=False))
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    by: str = Field(sa_column=Column(String(100), nullable=False))


class DataQuery(IdTable, table=True):
    __tablename__ = "data_query"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    record_id: str = Field(sa_column=Column(String(36), ForeignKey("form_record.id"),
                                            nullable=False, index=True))
    item_name: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(10), nullable=False))
    opened_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    opened_by: str = Field(sa_column=Column(String(100), nullable=False))


class QueryMessage(IdTable, table=True):
    __tablename__ = "query_message"

    query_id: str = Field(sa_column=Column(String(36), ForeignKey("data_query.id"),
                                           nullable=False, index=True))
    kind: str = Field(sa_column=Column(String(10), nullable=False))  # open/answer/close/reopen
    text: str = Field(sa_column=Column(Text(), nullable=False))
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    by: str = Field(sa_column=Column(String(100), nullable=False))
    record_version: int | None = Field(default=None, sa_column=Column(Integer(), nullable=True))


class EntryFile(IdTable, CreatedAt, table=True):
    """An uploaded file of a file field (REDCap's ``file``): the bytes are kept outside the
    database, named by their SHA-256 (files 0600), and the field's value is this row's id.
    Append-only: an upload is never changed; a new one is a new row (and a new value)."""

    __tablename__ = "entry_file"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    subject_id: str = Field(sa_column=Column(String(36), ForeignKey("subject.id"),
                                             nullable=False, index=True))
    item_name: str = Field(sa_column=Column(String(64), nullable=False))
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    size: int = Field(sa_column=Column(Integer, nullable=False))
    media_type: str = Field(sa_column=Column(String(100), nullable=False))
    filename: str = Field(sa_column=Column(String(255), nullable=False))
    uploaded_by: str = Field(sa_column=Column(String(100), nullable=False))


EXPORT_STATUSES = ("pending", "approved", "rejected")


class ExportRequest(IdTable, CreatedAt, table=True):
    """A request to export a study's clinical data for internal use and its signed decision
    (§11.3.4.1 c: 数据导出有完整的审批流程并存档). ``forms`` is the scope (None: the whole
    study); ``raw_quasi_identifiers`` asks for quasi-identifiers as entered (else they are
    left out). Approved by the PI's signature, or the data security officer's when raw
    quasi-identifiers are asked for; valid ``valid_days`` from the decision."""

    __tablename__ = "export_request"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    requester_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    requested_by: str = Field(sa_column=Column(String(200), nullable=False))
    requester_role: str = Field(sa_column=Column(String(40), nullable=False))
    forms: list[str] | None = Field(default=None, sa_column=Column(JSON(), nullable=True))
    raw_quasi_identifiers: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=false()))
    purpose: str = Field(sa_column=Column(Text(), nullable=False))
    valid_days: int = Field(sa_column=Column(Integer(), nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(10), nullable=False))
    decided_by: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    decided_role: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    decided_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                          nullable=True))
    decision_note: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    signature_id: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                          nullable=True))
