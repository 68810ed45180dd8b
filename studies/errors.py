"""The domain's typed errors (defined at the bottom layer so the ledger can raise them too)."""

from audit_trail.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    Locked,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RuleViolation,
)

__all__ = [
    "Conflict", "DomainError", "InvalidInput", "Locked", "NotAuthenticated", "NotFound",
    "PermissionDenied", "RuleViolation",
]
