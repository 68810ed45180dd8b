"""Demo data for trying the system: one account per role, with printed passwords.

Safe to run twice: existing accounts are kept and printed again. Refused in production.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from edc.state import AppState
from studies.accounts import service as accounts
from studies.accounts.roles import ROLE_LABELS, Role

DEMO_STUDY = "DEMO-2026-01"


def demo_password(username: str) -> str:
    return f"Demo-{username}-2026"


def demo_accounts() -> list[tuple[str, str, Role]]:
    return [(f"demo.{role.value}", ROLE_LABELS[role].split(" / ")[1] + " (demo)", role)
            for role in Role]


def load(session: Session, state: AppState) -> list[str]:
    lines = ["Demo accounts (username / password / role):"]
    for username, name, role in demo_accounts():
        if accounts.find_user(session, username) is None:
            study = None if role in (Role.ADMIN, Role.AUDITOR, Role.CUSTODIAN,
                                     Role.SECURITY_OFFICER, Role.COMMITTEE_MEMBER,
                                     Role.ETHICS_MEMBER) else DEMO_STUDY
            accounts.create_user(session, state.ledger, actor=accounts.SYSTEM,
                                 username=username, display_name=name,
                                 password=demo_password(username), roles=[(role, study)],
                                 must_change_password=False)
        lines.append(f"  {username:32} {demo_password(username):40} {ROLE_LABELS[role]}")
    return lines
