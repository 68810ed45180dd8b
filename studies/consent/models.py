from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy import false as sa_false
from sqlmodel import Field

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.i18n import _l
from studies.kernel.models import CreatedAt, IdTable

CONSENT_TYPES = ("informed", "broad", "waiver")
SCOPES = ("study", "identifiable", "deidentified_future", "cross_border", "contact")
SCOPE_LABELS = {
    "study": _l("Use in this study (coded)"),
    "identifiable": _l("Identifiable research use"),
    "deidentified_future": _l("De-identified future research"),
    "cross_border": _l("Data leaving the country"),
    "contact": _l("Contact for follow-up"),
}


class ConsentForm(IdTable, CreatedAt, table=True):
    """One version of a study's consent form, text in Chinese and English, approved by the
    ethics committee (``approval_id``). Never changed; a new text is a new version."""

    __tablename__ = "consent_form"
    __table_args__ = (UniqueConstraint("study_id", "version", name="consent_form_version"),)

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    version: str = Field(sa_column=Column(String(40), nullable=False))
    number: int = Field(sa_column=Column(Integer(), nullable=False))
    consent_type: str = Field(sa_column=Column(String(20), nullable=False))
    text_zh: str = Field(sa_column=Column(Text(), nullable=False))
    text_en: str = Field(sa_column=Column(Text(), nullable=False))
    approval_id: str = Field(sa_column=Column(
        String(36), ForeignKey("ethics_approval.id"), nullable=False))
    requires_reconsent: bool = Field(default=False, sa_column=Column(
        Boolean(), nullable=False, server_default=sa_false()))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))


class ConsentRecord(IdTable, table=True):
    """A subject's consent (or the waiver that covers them): type, form version, scopes, who
    obtained it and when. A re-consent is a new record; the older one stays for the record."""

    __tablename__ = "consent_record"

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    subject_id: str = Field(sa_column=Column(
        String(36), ForeignKey("subject.id"), nullable=False, index=True))
    consent_type: str = Field(sa_column=Column(String(20), nullable=False))
    form_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("consent_form.id"), nullable=True))
    waiver_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("consent_waiver.id"), nullable=True))
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    given_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    obtained_by: str = Field(sa_column=Column(String(100), nullable=False))
    replaces_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("consent_record.id"), nullable=True))
    recorded_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ConsentWithdrawal(IdTable, table=True):
    """A withdrawal of a consent record, whole (``scope`` is NULL) or of one scope."""

    __tablename__ = "consent_withdrawal"

    consent_id: str = Field(sa_column=Column(
        String(36), ForeignKey("consent_record.id"), nullable=False, index=True))
    subject_id: str = Field(sa_column=Column(
        String(36), ForeignKey("subject.id"), nullable=False, index=True))
    scope: str | None = Field(default=None, sa_column=Column(String(30), nullable=True))
    withdrawn_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_by: str = Field(sa_column=Column(String(100), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    recorded_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
