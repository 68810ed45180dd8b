"""Small factories for test data."""

from __future__ import annotations

from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.config import AuthConfig, parse_networks
from studies.accounts.models import User
from studies.accounts.roles import Role

PASSWORD = "correct horse battery staple"


def make_user(session: Session, ledger: Ledger, username: str, *roles: Role,
              study: str | None = None, must_change_password: bool = False) -> User:
    return accounts.create_user(
        session, ledger, actor=accounts.SYSTEM, username=username,
        display_name=username.title(), password=PASSWORD,
        roles=[(r, study) for r in roles], must_change_password=must_change_password)


def strict_auth(**overrides: object) -> AuthConfig:
    """An authentication policy with the second factor enforced and 10.0.0.0/8 as the
    hospital network (tests of accounts; the app fixtures turn enforcement off)."""
    base: dict[str, object] = dict(hospital_networks=parse_networks("10.0.0.0/8"),
                                   second_factor_enforced=True, totp_key=b"k" * 32)
    base.update(overrides)
    return AuthConfig(**base)  # type: ignore[arg-type]


def enrol_totp(session: Session, user: User, config: AuthConfig) -> str:
    """Enrol a TOTP secret for ``user`` directly; returns the plain secret."""
    from studies.accounts import totp

    secret = totp.begin_enrolment(user, config=config)
    user.totp_enabled = True
    session.flush()
    return secret
