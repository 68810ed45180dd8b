"""Tables of extracts.

- ``extract_request`` — one request: who asked, for what, which fields, tier, recipient and its
  ``age`` public key, period of use, cross-border flag; the data security committee's roll
  frozen when it opened (user ids, Appendix C); its approval status and the state of its
  build (progress, error, package hash, manifest hash, snapshot ledger sequence, checks).
- ``extract_decision`` — each approval act, all append-only: the security officer's approval,
  committee votes, the data-use agreement, the ethics approval for identifiable use, and a data
  manager's override of a failed pre-transfer check. Each points at its electronic signature
  and records the SHA-256 of the request and of the data-use agreement's terms it signed.
- ``extract_transfer`` — the chain of custody (介质交接记录): built, downloaded, destruction
  certificate received; who, when, and the SHA-256 of what moved.
- ``cross_border_approval`` — an authority's approval lifting the 250-person cross-border limit
  for one recipient organisation (§7 p).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    false,
)
from sqlmodel import Field

from audit_trail.base import UTCDateTime, utcnow
from studies.extracts.tiers import TIER_RULES
from studies.kernel.models import IdTable

TIERS = tuple(TIER_RULES)  # the rules of each tier: studies/extracts/tiers.py
TIER_LABELS = {t.name: t.label for t in TIER_RULES.values()}
STATUSES = ("pending", "approved", "rejected", "held", "built", "delivered")
BUILD_STATES = ("none", "queued", "running", "done", "failed", "blocked")
DECISION_KINDS = ("officer", "vote", "dua", "ethics", "override")


class ExtractRequest(IdTable, table=True):
    __tablename__ = "extract_request"

    study_id: str = Field(sa_column=Column(String(36), ForeignKey("study.id"), nullable=False,
                                           index=True))
    study_code: str = Field(sa_column=Column(String(100), nullable=False))
    requested_by: str = Field(sa_column=Column(String(100), nullable=False))
    requested_by_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    requested_at: dt.datetime = Field(default_factory=utcnow,
                                      sa_column=Column(UTCDateTime(), nullable=False))
    purpose: str = Field(sa_column=Column(Text(), nullable=False))
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    tier: str = Field(sa_column=Column(String(3), nullable=False))
    k: int = Field(default=5, sa_column=Column(Integer(), nullable=False))
    recipient_org: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    # The registered recipient organisation (None only on requests made before the registry).
    recipient_org_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("organisation.id"), nullable=True, index=True))
    recipient_key: str = Field(sa_column=Column(String(100), nullable=False))
    # Accounts of the recipient that may download the package (the requester at least).
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON(),
                                                                          nullable=False))
    use_from: dt.date = Field(sa_column=Column(Date(), nullable=False))
    use_until: dt.date = Field(sa_column=Column(Date(), nullable=False))
    cross_border: bool = Field(default=False, sa_column=Column(Boolean(), nullable=False,
                                                               server_default=false()))
    # Records about persons counted against the cross-border limit (§7 p): the distinct
    # subjects the extract may include; set on cross-border requests only.
    persons: int | None = Field(default=None, sa_column=Column(Integer(), nullable=True))
    as_of: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                     nullable=True))
    # The data security committee when the request opened: the user ids of its active members
    # then (Appendix C); the vote counts over this roll only.
    committee_roll: list[str] | None = Field(default=None, sa_column=Column(JSON(),
                                                                            nullable=True))
    status: str = Field(default="pending", sa_column=Column(String(12), nullable=False))
    status_reason: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    decided_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                          nullable=True))
    # The build (background job).
    build_state: str = Field(default="none", sa_column=Column(String(10), nullable=False))
    progress: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    build_error: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    build_requested_by: str | None = Field(default=None,
                                           sa_column=Column(String(100), nullable=True))
    built_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                        nullable=True))
    package_file: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    package_sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    package_size: int | None = Field(default=None, sa_column=Column(BigInteger(),
                                                                    nullable=True))
    manifest_sha256: str | None = Field(default=None, sa_column=Column(String(64),
                                                                       nullable=True))
    snapshot_seq: int | None = Field(default=None, sa_column=Column(BigInteger(),
                                                                    nullable=True))
    row_count: int | None = Field(default=None, sa_column=Column(Integer(), nullable=True))
    checks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(),
                                                                         nullable=True))
    exclusions: dict[str, int] | None = Field(default=None, sa_column=Column(JSON(),
                                                                             nullable=True))
    # After the transfer (§11.4.2.6).
    destruction_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(),
                                                                              nullable=True))
    destruction_sha256: str | None = Field(default=None, sa_column=Column(String(64),
                                                                          nullable=True))


class ExtractDecision(IdTable, table=True):
    __tablename__ = "extract_decision"

    request_id: str = Field(sa_column=Column(String(36), ForeignKey("extract_request.id"),
                                             nullable=False, index=True))
    kind: str = Field(sa_column=Column(String(10), nullable=False))
    approve: bool = Field(sa_column=Column(Boolean(), nullable=False))
    username: str = Field(sa_column=Column(String(100), nullable=False))
    user_id: str = Field(sa_column=Column(String(36), nullable=False))
    signature_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("e_signature.id"), nullable=True))
    note: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
    reference: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    # What was signed: the request as shown, and the data-use agreement's terms
    # (studies/extracts/agreement.py); the signature's content hash is over both.
    request_sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    terms_sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    decided_at: dt.datetime = Field(default_factory=utcnow,
                                    sa_column=Column(UTCDateTime(), nullable=False))


class ExtractTransfer(IdTable, table=True):
    __tablename__ = "extract_transfer"

    request_id: str = Field(sa_column=Column(String(36), ForeignKey("extract_request.id"),
                                             nullable=False, index=True))
    event: str = Field(sa_column=Column(String(20), nullable=False))
    actor: str = Field(sa_column=Column(String(100), nullable=False))
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                     nullable=False))
    sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    client: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    note: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))


class CrossBorderApproval(IdTable, table=True):
    """An approval of the relevant authority for data about more than 250 persons to leave the
    country to one recipient organisation (§7 p), recorded by the data security officer: the
    authority's reference, the date of the approval and the SHA-256 of the uploaded document
    (the document itself is kept outside the system). Append-only."""

    __tablename__ = "cross_border_approval"

    organisation_id: str = Field(sa_column=Column(String(36), ForeignKey("organisation.id"),
                                                  nullable=False, index=True))
    reference: str = Field(sa_column=Column(String(100), nullable=False))
    approved_on: dt.date = Field(sa_column=Column(Date(), nullable=False))
    document_sha256: str = Field(sa_column=Column(String(64), nullable=False))
    document_name: str = Field(sa_column=Column(String(200), nullable=False))
    recorded_by: str = Field(sa_column=Column(String(100), nullable=False))
    recorded_at: dt.datetime = Field(default_factory=utcnow,
                                     sa_column=Column(UTCDateTime(), nullable=False))
