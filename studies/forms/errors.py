"""The errors of this domain (the kernel's typed errors cover the rest)."""

from __future__ import annotations


class DictionaryError(ValueError):
    """The file is refused; ``errors`` are line-numbered messages."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors[:20]) + (f" (and {len(errors) - 20} more)"
                                                    if len(errors) > 20 else ""))
        self.errors = errors


class OdmError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors[:20]))
        self.errors = errors


class ExpressionError(ValueError):
    """An expression that cannot be read; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(
            message if position is None else f"{message} (at character {position + 1})")
        self.position = position
