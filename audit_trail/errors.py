"""Typed errors shared by every domain package.

Domain code raises these (never ``HTTPException``); ``edc/errors.py`` maps each base to an HTTP
status and a JSON body, a page, or an htmx fragment. They live at the bottom layer so that both
``audit_trail`` and ``studies`` can raise them.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error that a user may be shown.

    ``message`` is bilingual user-facing text; ``field`` names the input at fault;
    ``clause`` cites the GB/T 39725-2020 clause a rule comes from.
    """

    code = "error"

    def __init__(
        self, message: str, *, field: str | None = None, clause: str | None = None,
        audit: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.clause = clause
        # Ledger fields of a refusal that must be recorded although the request's own
        # transaction rolls back (failed login, refused access); the web layer writes it.
        self.audit = audit


class NotFound(DomainError):
    code = "not_found"


class PermissionDenied(DomainError):
    code = "permission_denied"


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"


class RuleViolation(DomainError):
    """A rule of the standard or the protocol forbids this; ``clause`` says which."""

    code = "rule_violation"


class Locked(DomainError):
    code = "locked"


class LedgerIntegrityError(Exception):
    """The ledger does not verify; ``seq`` is the first entry that does not match."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq
