"""Shared table conventions: naming convention, UTC timestamps; running prebuilt Core statements.

Every ``models.py`` imports from here, so the naming convention is set on the one SQLModel
metadata before any table is declared and migrations name constraints identically on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CursorResult, DateTime, Executable
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.typing import TupleAny, Unpack
from sqlmodel import SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def execute_core(session: Session, statement: Executable, params: Any = None
                 ) -> CursorResult[Unpack[TupleAny]]:
    """Run a Core statement — a select of columns or tables, an insert, an update — on the
    session's connection, in its transaction. ``session.execute`` would do the same with the
    ORM's per-statement work on top (its options, compile state and result set-up), which
    costs about as much as the statement itself on the hot paths (docs/benchmarks-entry.md,
    "Fifth round"). Pending ORM changes are flushed first, as the session would. Not for
    statements that load ORM objects."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(statement, params)
