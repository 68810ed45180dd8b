"""Output shapes more than one domain answers with (plain pydantic; the API documents them)."""

from __future__ import annotations

from pydantic import BaseModel


class StatusOut(BaseModel):
    """A write that answers only what it did, e.g. ``{"status": "revoked"}``."""

    status: str
