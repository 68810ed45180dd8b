"""Output shapes more than one domain answers with (plain pydantic; the API documents them)."""

from __future__ import annotations

from pydantic import BaseModel

# The largest values the database's integer columns hold (PostgreSQL INTEGER and BIGINT): an
# input bound to a column is bounded here at the schema, so a larger number is a 422 naming
# the field, never a database error.
DB_INT_MAX = 2**31 - 1
DB_BIGINT_MAX = 2**63 - 1


class StatusOut(BaseModel):
    """A write that answers only what it did, e.g. ``{"status": "revoked"}``."""

    status: str
