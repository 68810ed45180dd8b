"""The typed errors every domain raises (defined at the bottom layer, in ``audit_trail``, so the
ledger can raise them too)."""

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


class TooManyRequests(DomainError):
    """Too many attempts in a short time (login rate limit); answered with HTTP 429."""

    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int = 60, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


__all__ += ["TooManyRequests"]


class SignatureRefused(NotAuthenticated):
    """An electronic signature refused because what the signer typed does not match (username,
    password, second-factor code). The session itself stays valid, so the delivery layer
    answers 422 naming the field — on the signing page, not with a logout — and the refusal is
    audited (``audit``). Still a :class:`NotAuthenticated`: the signer was not re-authenticated."""

    code = "signature_refused"


__all__ += ["SignatureRefused"]
