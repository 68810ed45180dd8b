"""Demo data for trying the system: one account per role, with printed passwords.

Safe to run twice: existing accounts are kept and printed again. Refused in production.
Privileged roles need the second factor at every login: their demo accounts are enrolled with
a fixed, printed TOTP secret (demo only) so that a person can add it to an authenticator app or
compute the current code with the printed command.
"""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy.orm import Session

from edc.state import AppState
from studies.accounts import service as accounts
from studies.accounts import totp
from studies.accounts.roles import PRIVILEGED, ROLE_LABELS, Role

DEMO_STUDY = "DEMO-2026-01"


def demo_password(username: str) -> str:
    return f"Demo-{username}-2026"


def demo_totp_secret(username: str) -> str:
    """A fixed TOTP secret per demo account (never used outside the demo)."""
    return base64.b32encode(hashlib.sha256(b"edc-demo-totp:" + username.encode()).digest()[:20]
                            ).decode()


def demo_accounts() -> list[tuple[str, str, Role]]:
    return [(f"demo.{role.value}", ROLE_LABELS[role].split(" / ")[1] + " (demo)", role)
            for role in Role]


def load(session: Session, state: AppState) -> list[str]:
    lines = ["Demo accounts (username / password / role):"]
    auth = state.auth
    enrolled = []
    for username, name, role in demo_accounts():
        user = accounts.find_user(session, username)
        if user is None:
            study = None if role in (Role.ADMIN, Role.AUDITOR, Role.CUSTODIAN,
                                     Role.SECURITY_OFFICER, Role.COMMITTEE_MEMBER,
                                     Role.ETHICS_MEMBER) else DEMO_STUDY
            user = accounts.create_user(session, state.ledger, actor=accounts.SYSTEM,
                                        username=username, display_name=name,
                                        password=demo_password(username), roles=[(role, study)],
                                        must_change_password=False, config=auth)
        if role in PRIVILEGED:
            if not user.totp_enabled:
                user.totp_secret = totp.seal(demo_totp_secret(username), auth)
                user.totp_enabled = True
                session.flush()
            enrolled.append(username)
        lines.append(f"  {username:32} {demo_password(username):40} {ROLE_LABELS[role]}"
                     + ("  [TOTP]" if role in PRIVILEGED else ""))
    if enrolled:
        lines += ["",
                  "Accounts marked [TOTP] need a second-factor code at login (privileged roles).",
                  "Add the secret to an authenticator app, or print the current code with:",
                  "  .venv/bin/python -c \"import pyotp,sys; print(pyotp.TOTP(sys.argv[1]).now())\""
                  " SECRET"]
        lines += [f"  {u:32} TOTP secret {demo_totp_secret(u)}" for u in enrolled]
    return lines
