from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.models import CreatedAt, IdTable


class Subject(IdTable, table=True):
    """A subject of a study. Holds no identity: no name, ID number or phone (§11.3.4.4 d)."""

    __tablename__ = "subject"

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    site_id: str = Field(sa_column=Column(
        String(36), ForeignKey("site.id"), nullable=False, index=True))
    code: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    status: str = Field(default="enrolled", sa_column=Column(String(20), nullable=False))
    enrolled_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    enrolled_by: str = Field(sa_column=Column(String(100), nullable=False))


class CodeIndexEntry(IdTable, CreatedAt, table=True):
    """The code index (患者代码索引): one row per subject, code ↔ identity, encrypted.

    ``ciphertext`` is XChaCha20-Poly1305 of the identity JSON under the key named by ``key_id``
    (which lives in the key directory, never here), bound to ``code`` by associated data.
    ``blind_index`` (HMAC-SHA256 of the normalised ID number under the key ``blind_key_id``)
    finds duplicate enrolment without decrypting; it is unique within a study.
    """

    __tablename__ = "code_index_entry"
    __table_args__ = (
        UniqueConstraint("study_id", "blind_index", name="code_index_study_blind"),
    )

    subject_id: str = Field(sa_column=Column(
        String(36), ForeignKey("subject.id"), nullable=False, unique=True))
    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    code: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    key_id: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    nonce: bytes = Field(sa_column=Column(LargeBinary(24), nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    blind_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, index=True))
    blind_key_id: str = Field(sa_column=Column(String(16), nullable=False))
    encrypted_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Disclosure(IdTable, table=True):
    """To whom a subject's data went (§7 g, kept six years): one row per subject per extract
    package built with their data — the recipient, the tier, the fields, when. Written by the
    extract build (in the same transaction as its ledger entry, which holds the SHA-256 of the
    included subjects); read by the custodian and in the subject access export."""

    __tablename__ = "subject_disclosure"

    subject_id: str = Field(sa_column=Column(
        String(36), ForeignKey("subject.id"), nullable=False, index=True))
    request_id: str = Field(sa_column=Column(
        String(36), ForeignKey("extract_request.id"), nullable=False, index=True))
    study_code: str = Field(sa_column=Column(String(100), nullable=False))
    recipient_org: str = Field(sa_column=Column(String(200), nullable=False))
    tier: str = Field(sa_column=Column(String(3), nullable=False))
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    disclosed_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


SUBJECT_REQUEST_KINDS = ("correction", "restriction")
SUBJECT_REQUEST_STATUSES = ("open", "resolved", "declined")


class SubjectRequest(IdTable, CreatedAt, table=True):
    """A subject's request (§7 f correction or completion, §7 h restriction), recorded by the
    custodian in the subject's words and routed to the study team at the subject's site: a
    correction is resolved by a normal audited change whose reason names the request, a
    restriction by a consent scope withdrawal recorded against it (or declined with a note:
    the controller need not agree, §7 h)."""

    __tablename__ = "subject_request"

    study_id: str = Field(sa_column=Column(
        String(36), ForeignKey("study.id"), nullable=False, index=True))
    subject_id: str = Field(sa_column=Column(
        String(36), ForeignKey("subject.id"), nullable=False, index=True))
    reference: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(12), nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    recorded_by: str = Field(sa_column=Column(String(100), nullable=False))
    status: str = Field(default="open", sa_column=Column(String(10), nullable=False))
    resolution: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolved_by: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    resolved_at: dt.datetime | None = Field(default=None, sa_column=Column(
        UTCDateTime(), nullable=True))
    # restriction: the consent record whose scopes were withdrawn, and which
    consent_id: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    scopes: list[str] | None = Field(default=None, sa_column=Column(JSON(), nullable=True))
