"""Mixins of tables: the columns most tables share, declared once.

- :class:`IdTable` — ``id``, a random UUID as text (``new_id``), the primary key;
- :class:`CreatedAt` — ``created_at``, a time-zone-aware UTC timestamp set on insert.

A table lists them before ``SQLModel``: ``class Study(IdTable, CreatedAt, table=True)``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from audit_trail.base import UTCDateTime, utcnow
from studies.kernel.ids import new_id


class IdTable(SQLModel):
    id: str = Field(default_factory=new_id, primary_key=True, sa_type=String(36))


class CreatedAt(SQLModel):
    created_at: dt.datetime = Field(default_factory=utcnow, nullable=False,
                                    sa_type=UTCDateTime)
