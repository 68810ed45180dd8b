"""Ledger tables. Append-only: database triggers (see ``audit_trail/triggers.py``) refuse UPDATE
and DELETE on ``ledger_entry`` and ``ledger_checkpoint``; the one UPDATE allowed is a recorded
redaction (see ``service.redact``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow

GENESIS_HASH = b"\x00" * 32


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        Index("ix_ledger_entry_actor", "actor"),
        Index("ix_ledger_entry_action", "action"),
        Index("ix_ledger_entry_entity", "entity_type", "entity_id"),
        Index("ix_ledger_entry_study", "study"),
        Index("ix_ledger_entry_subject", "subject"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Canonical UTC text ("2026-11-28T12:00:00.123456Z"): hashed as stored, sorts as time.
    ts: str = Field(sa_column=Column(String(27), nullable=False))
    actor: str = Field(sa_column=Column(String(200), nullable=False))
    action: str = Field(sa_column=Column(String(100), nullable=False))
    entity_type: str = Field(sa_column=Column(String(100), nullable=False))
    entity_id: str = Field(sa_column=Column(String(200), nullable=False))
    study: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    subject: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    outcome: str = Field(sa_column=Column(String(20), nullable=False))
    client: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Canonical JSON (sorted keys, no spaces): [{"field":..,"before":..,"after":..}, ...]
    changes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    redacted: bool = Field(default=False, nullable=False)
    # The predecessor's leaf hash (genesis: 32 zero bytes); it is part of this entry's encoding,
    # so the leaf hashes form a chain as well as the leaves of the Merkle tree.
    prev_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LedgerHead(SQLModel, table=True):
    """One row: the last entry's sequence and leaf hash, kept by an AFTER INSERT trigger on
    ``ledger_entry``. Writers lock it (``SELECT … FOR UPDATE``) to serialise."""

    __tablename__ = "ledger_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LedgerCheckpoint(SQLModel, table=True):
    __tablename__ = "ledger_checkpoint"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    # The Merkle frontier at this size, so the next checkpoint needs only the leaves since.
    frontier: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(String(100), nullable=False))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
