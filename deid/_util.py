"""Small internal helpers shared by the public modules (not part of the public API)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from deid.errors import MissingColumnError, ParameterError, SecretError

MIN_SECRET_BYTES = 16


def require_columns(df: pl.DataFrame, columns: Iterable[str], rule: str) -> None:
    """Raise :class:`MissingColumnError` naming the first column that is not in ``df``."""
    present = set(df.columns)
    for c in columns:
        if c not in present:
            raise MissingColumnError(
                f"not in the table (columns are {sorted(present)})", column=c, rule=rule
            )


def as_list(columns: str | Sequence[str]) -> list[str]:
    """Accept one column name or a sequence of names."""
    if isinstance(columns, str):
        return [columns]
    return list(columns)


def secret_bytes(secret: bytes | str, rule: str) -> bytes:
    """Normalise a project secret and refuse weak ones (< 16 bytes, i.e. < 128 bits)."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise SecretError(
            f"project secret must be at least {MIN_SECRET_BYTES} bytes, got {len(raw)}",
            rule=rule,
        )
    return raw


def check_project_id(project_id: str, rule: str) -> bytes:
    if not isinstance(project_id, str) or not project_id:
        raise ParameterError("project_id must be a non-empty string", rule=rule)
    return project_id.encode("utf-8")
