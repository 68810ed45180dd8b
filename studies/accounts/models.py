from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.models import CreatedAt, IdTable


class Organisation(IdTable, CreatedAt, table=True):
    """A recipient organisation (§11.3.4.6, §7 p): who may receive what depends on its kind
    (``studies.accounts.organisations.OrgKind``) and whether data leave the country on its
    registered country (ISO 3166-1 alpha-2). Registered by the administrator, never edited."""

    __tablename__ = "organisation"

    code: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    name_zh: str = Field(sa_column=Column(String(200), nullable=False))
    name_en: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    country: str = Field(sa_column=Column(String(2), nullable=False))

    @property
    def label(self) -> str:
        """The name shown and stored on requests and manifests: "中文 / English"."""
        return f"{self.name_zh} / {self.name_en}"


class User(IdTable, CreatedAt, table=True):
    __tablename__ = "user_account"

    username: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    display_name: str = Field(sa_column=Column(String(200), nullable=False))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    must_change_password: bool = Field(default=True, nullable=False)
    is_active: bool = Field(default=True, nullable=False)
    password_changed_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # TOTP secret, encrypted (XSalsa20-Poly1305 under a key derived from the key directory).
    totp_secret: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    totp_enabled: bool = Field(default=False, nullable=False)
    # Last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # The organisation the account belongs to (at most one; a sponsor's is its company).
    organisation_id: str | None = Field(default=None, sa_column=Column(
        String(36), ForeignKey("organisation.id"), nullable=True, index=True))
    # The last day (UTC) the account may be used (§11.3.2: people leave studies); None: open.
    end_date: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))


class PasswordHistory(IdTable, CreatedAt, table=True):
    """An earlier password of an account (its Argon2id hash), so that the last few are not
    chosen again (ASVS 5.0 V6.2)."""

    __tablename__ = "password_history"

    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))


SCOPE_LEVELS = ("site", "department", "hospital")


class RoleGrant(IdTable, CreatedAt, table=True):
    """A role held by a user, optionally scoped to one study (None: every study) and within
    it to one site (None: every site of the study). ``scope_level`` widens a site grant along
    the site's hospital / department / medical group (全院/科室/医疗组, §11.3.4.1 a): ``site``
    — that site (its medical group) only; ``department`` — every site of the study in the same
    hospital and department; ``hospital`` — every site of the study in the same hospital."""

    __tablename__ = "role_grant"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "study", "site", name="user_role_study_site"),)

    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    role: str = Field(sa_column=Column(String(40), nullable=False))
    study: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    site: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))
    scope_level: str = Field(default="site", sa_column=Column(
        String(12), nullable=False, server_default="site"))


class UserSession(CreatedAt, table=True):
    """A server-side login session; the browser holds only a random token whose hash is the id."""

    __tablename__ = "user_session"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    last_seen: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    end_reason: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    # Set by the first electronic signature of the session (21 CFR 11.200 a 1 i).
    signed_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # The second factor was checked at login (needed for privileged actions and signatures).
    second_factor: bool = Field(default=False, nullable=False)


class LoginThrottle(SQLModel, table=True):
    """Recent login attempts per rate-limit key (an account, a client address): the epoch
    seconds of each, at most the limit, shared by every web process on PostgreSQL."""

    __tablename__ = "login_throttle"

    key: str = Field(sa_column=Column(String(300), primary_key=True))
    hits: list[float] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    updated_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))


class RecoveryCode(IdTable, table=True):
    """A one-time recovery code for the second factor; only its SHA-256 is stored."""

    __tablename__ = "recovery_code"

    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    code_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    used_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))


class ApiToken(IdTable, CreatedAt, table=True):
    """A bearer token for a machine client, scoped to one role (and study), expiring, revocable.
    Only the SHA-256 of the token is stored; the token itself is shown once."""

    __tablename__ = "api_token"

    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    role: str = Field(sa_column=Column(String(40), nullable=False))
    study: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    created_by: str = Field(sa_column=Column(String(100), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_used_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))


class Signature(IdTable, table=True):
    """An electronic signature (21 CFR 11.50/11.200): who, when, what it means, and the hash of
    the exact content signed. Never updated; a signed checkpoint of the ledger is written with
    each one."""

    __tablename__ = "e_signature"

    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    username: str = Field(sa_column=Column(String(100), nullable=False))
    display_name: str = Field(sa_column=Column(String(200), nullable=False))
    meaning: str = Field(sa_column=Column(String(200), nullable=False))
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    entity_type: str = Field(sa_column=Column(String(100), nullable=False))
    entity_id: str = Field(sa_column=Column(String(200), nullable=False))
    study: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    signed_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    ledger_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
