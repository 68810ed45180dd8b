"""Small factories for test data."""

from __future__ import annotations

from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.models import User
from studies.accounts.roles import Role

PASSWORD = "correct horse battery staple"


def make_user(session: Session, ledger: Ledger, username: str, *roles: Role,
              study: str | None = None, must_change_password: bool = False) -> User:
    return accounts.create_user(
        session, ledger, actor=accounts.SYSTEM, username=username,
        display_name=username.title(), password=PASSWORD,
        roles=[(r, study) for r in roles], must_change_password=must_change_password)
