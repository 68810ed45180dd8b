"""Output shapes of extract requests, their approvals, builds and destruction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PField


class ExtractFieldOut(BaseModel):
    name: str
    label: str
    classification: str
    data_type: str
    level: int


class ApprovalsOut(BaseModel):
    needs: list[str] = PField(description="in order: officer (the first review, 初审), "
                              "committee, dua, ethics")
    done: dict[str, bool]
    yes: int = PField(description="yes votes of members of the frozen roll")
    no: int
    committee_members: int = PField(description="the roll frozen when the request opened")
    committee_left: int = PField(description="roll members who left without voting")
    committee_min: int = PField(description="the fewest members a committee may have")
    first_review: bool = PField(description="the officer's review comes first")
    problem: str | None = PField(description="why the request is refused or cannot pass")


class BuildOut(BaseModel):
    state: str
    progress: int
    error: str | None
    built_at: str | None
    package_sha256: str | None
    package_size: int | None
    manifest_sha256: str | None
    snapshot_seq: int | None
    rows: int | None
    checks: dict[str, Any] | None
    exclusions: dict[str, Any] | None


class RecipientOut(BaseModel):
    """The registered recipient organisation and its cross-border running total (§7 p):
    records about persons (distinct subjects) in its cross-border requests not rejected, every
    study; ``cross_border_limit`` is None when an authority approval lifts the limit."""

    id: str
    code: str
    kind: str
    country: str
    abroad: bool
    cross_border_total: int
    cross_border_limit: int | None
    authority_approval: str | None


class ExtractOut(BaseModel):
    id: str
    study: str
    tier: str
    purpose: str
    fields: list[str]
    recipient_org: str
    recipient_key: str
    recipients: list[str]
    use_from: str
    use_until: str
    cross_border: bool
    persons: int | None
    k: int
    recipient: RecipientOut | None
    as_of: str | None
    requested_by: str
    requested_at: str
    status: str
    status_reason: str | None
    approvals: ApprovalsOut
    build: BuildOut
    destruction_due: str
    destruction_at: str | None


class DecisionRowOut(BaseModel):
    kind: str
    approve: bool
    by: str
    at: str
    signature: str | None
    note: str | None
    reference: str | None
    request_sha256: str | None
    terms_sha256: str | None


class AgreementOut(BaseModel):
    """The data-use agreement as the signer sees it, and what a signature binds."""

    version: str
    terms: list[dict[str, str]] = PField(description="each term: key, clause, zh, en")
    text: str = PField(description="the full text shown; terms_sha256 is its SHA-256")
    terms_sha256: str
    request_sha256: str = PField(description="SHA-256 of the request as shown")
    content_sha256: str = PField(description="what an approval act signs: SHA-256 over the "
                                 "request's and the terms' hashes")


class TransferOut(BaseModel):
    event: str
    actor: str
    at: str
    sha256: str | None
    note: str | None


class ApplicantRequestOut(BaseModel):
    id: str
    study: str
    tier: str
    fields: list[str]
    status: str
    received: bool
    rows: int | None


class ExtractDetailOut(ExtractOut):
    """The request with its decisions and chain of custody; approvers also see the applicant's
    earlier requests (``applicant_history``, ``already_received_fields``), which are absent
    for everyone else."""

    decisions: list[DecisionRowOut]
    transfers: list[TransferOut]
    field_classes: dict[str, Any]
    applicant_history: list[ApplicantRequestOut] | None = None
    already_received_fields: list[str] | None = None


class DecisionOut(BaseModel):
    id: str
    kind: str
    approve: bool
    signature: str | None
    request_sha256: str | None
    terms_sha256: str | None
    content_sha256: str | None


class BuildQueuedOut(BaseModel):
    id: str
    build: str
    progress: int


class OverrideOut(BaseModel):
    id: str
    build: str


class DestructionOut(BaseModel):
    id: str
    destruction_sha256: str | None


class AuthorityApprovalOut(BaseModel):
    id: str
    organisation: str  # the organisation's id
    reference: str
    approved_on: str
    document_sha256: str
    document_name: str
    recorded_by: str
    recorded_at: str


# ---- input shapes ----------------------------------------------------------------------------

class RequestIn(BaseModel):
    purpose: str = PField(max_length=4000)
    fields: list[str] = PField(max_length=500)
    tier: str = PField(max_length=3)
    recipient_org: str = PField(max_length=200)
    recipient_key: str = PField(max_length=100)
    recipients: list[str] = PField(default_factory=list, max_length=20)
    use_from: dt.date
    use_until: dt.date
    # Derived from the recipient organisation's country; a value that contradicts it is 422.
    cross_border: bool | None = None
    as_of: dt.datetime | None = None
    k: int = 5


# ---- input shapes ----------------------------------------------------------------------------

class DecisionIn(BaseModel):
    kind: str = PField(max_length=10)
    approve: bool = True
    password: str = PField(max_length=200)
    username: str = PField(default="", max_length=100)
    totp: str | None = PField(default=None, max_length=12)
    note: str | None = PField(default=None, max_length=2000)
    reference: str | None = PField(default=None, max_length=100)
    terms_sha256: str | None = PField(default=None, max_length=64)


# ---- input shapes ----------------------------------------------------------------------------

class OverrideIn(BaseModel):
    reason: str = PField(max_length=2000)
