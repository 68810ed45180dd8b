from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: str = Field(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    username: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    display_name: str = Field(sa_column=Column(String(200), nullable=False))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    must_change_password: bool = Field(default=True, nullable=False)
    is_active: bool = Field(default=True, nullable=False)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class RoleGrant(SQLModel, table=True):
    """A role held by a user, optionally scoped to one study (None: every study)."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "role", "study", name="user_role_study"),)

    id: str = Field(default_factory=new_id, sa_column=Column(String(36), primary_key=True))
    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    role: str = Field(sa_column=Column(String(40), nullable=False))
    study: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class UserSession(SQLModel, table=True):
    """A server-side login session; the browser holds only a random token whose hash is the id."""

    __tablename__ = "user_session"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: str = Field(sa_column=Column(
        String(36), ForeignKey("user_account.id"), nullable=False, index=True))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    end_reason: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
