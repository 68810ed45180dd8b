"""Output shapes of the accounts domain (log in, own account, API tokens, account admin) and
of the audit trail's API (verify, checkpoints, search), as the JSON API answers them."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

# ---- log in and the own account ---------------------------------------------------------------


class LoginOut(BaseModel):
    username: str
    must_change_password: bool
    pending: str | None
    second_factor: bool


class MeOut(BaseModel):
    username: str
    display_name: str
    roles: list[dict[str, str | None]]
    must_change_password: bool
    pending: str | None = None
    second_factor: bool = False
    via_token: bool = False


class SecondFactorStartOut(BaseModel):
    secret: str
    otpauth_uri: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


# ---- API tokens -------------------------------------------------------------------------------


class TokenOut(BaseModel):
    id: str
    name: str
    username: str
    role: str
    study: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenIssuedOut(BaseModel):
    """A new token: the secret is shown this once."""

    id: str
    token: str
    expires_at: str


# ---- account administration -------------------------------------------------------------------


class AccountOut(BaseModel):
    username: str
    display_name: str
    active: bool
    must_change_password: bool
    totp_enabled: bool
    roles: list[str]
    open_sessions: int
    locked_until: str | None
    end_date: str | None = None


class AccountCreatedOut(BaseModel):
    id: str
    username: str


class SessionsEndedOut(BaseModel):
    status: str
    ended: int


class OrganisationOut(BaseModel):
    """A registered recipient organisation (§11.3.4.6, §7 p)."""

    id: str
    code: str
    name_zh: str
    name_en: str
    label: str
    kind: str
    country: str
    country_label: str
    abroad: bool
    members: list[str] | None = None


# ---- the audit trail --------------------------------------------------------------------------


class LedgerVerifyOut(BaseModel):
    intact: bool
    entries: int
    checkpoints: int
    redacted: int
    root: str
    summary: str


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str
    reason: str
    note: str


class CheckpointsOut(BaseModel):
    verifier_key: str
    checkpoints: list[CheckpointOut]


class AuditEntryOut(BaseModel):
    seq: int
    ts: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    study: str | None
    subject: str | None
    version: int | None
    outcome: str
    client: str | None
    reason: str | None
    changes: str | None


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before_seq: int | None
