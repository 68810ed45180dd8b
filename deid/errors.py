"""Domain errors raised by :mod:`deid`.

Every error is a :class:`ValueError` (so callers that only know about bad input still catch it)
and carries the offending ``column`` (when there is one) and the ``rule`` that was violated, so a
message can be shown to a data manager as is.
"""

from __future__ import annotations


class DeidError(ValueError):
    """Base class: a de-identification rule could not be applied to the given input."""

    def __init__(self, message: str, *, column: str | None = None, rule: str = "") -> None:
        self.column = column
        self.rule = rule
        prefix = f"column {column!r}: " if column is not None else ""
        suffix = f" [rule: {rule}]" if rule else ""
        super().__init__(f"{prefix}{message}{suffix}")


class MissingColumnError(DeidError):
    """A column named in the call is not in the table."""


class ColumnTypeError(DeidError):
    """A column has a type the transform cannot work on (e.g. a date transform on text)."""


class InvalidValueError(DeidError):
    """A value in a column does not have the form the rule requires (e.g. a 5-digit postcode)."""


class HierarchyError(DeidError):
    """A generalisation hierarchy is malformed or does not cover the data."""


class SecretError(DeidError):
    """A project secret is missing or too weak for keyed tokens or date offsets."""


class ParameterError(DeidError):
    """A parameter (k, l, suppression limit, level, threshold...) is out of range."""


class InfeasibleError(DeidError):
    """No generalisation in the lattice meets the privacy model within the suppression limit."""
