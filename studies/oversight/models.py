"""Abnormal-access flags (§11.1.2.4, §11.3.4.9 d).

- ``access_flag`` — one row per episode of abnormal access a rule found (outside the hospital
  network, out of working hours, bulk reads, repeated refusals): who, which rule, when it was
  first seen, what was seen; acknowledged once by the data security officer with a note. An
  open (unacknowledged) flag of a rule for a user is the episode: the rule raises no second one
  for that user until it is acknowledged. Never deleted.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, String, Text
from sqlmodel import Field

from audit_trail.base import UTCDateTime
from studies.kernel.models import CreatedAt, IdTable

RULES = ("outside_network", "out_of_hours", "bulk_reads", "repeated_refusals")


class AccessFlag(IdTable, CreatedAt, table=True):
    __tablename__ = "access_flag"
    __table_args__ = (Index("ix_access_flag_user_rule", "username", "rule"),)

    rule: str = Field(sa_column=Column(String(30), nullable=False))
    username: str = Field(sa_column=Column(String(100), nullable=False))
    study: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    client: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    seen_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    detail: str = Field(sa_column=Column(Text(), nullable=False))
    acknowledged_by: str | None = Field(default=None, sa_column=Column(String(100),
                                                                       nullable=True))
    acknowledged_at: dt.datetime | None = Field(default=None, sa_column=Column(
        UTCDateTime(), nullable=True))
    note: str | None = Field(default=None, sa_column=Column(Text(), nullable=True))
