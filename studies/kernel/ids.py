"""Identifiers of rows: random UUIDs as text (no sequence to guess, none to coordinate)."""

from __future__ import annotations

import uuid


def new_id() -> str:
    return str(uuid.uuid4())
