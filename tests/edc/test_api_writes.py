"""The /api/v1 write routes no other test calls, each through the real app as the role that
may use it, with valid input: the status, the JSON body the user sees and one effect (so that
each route's declared response model is proven to fit what it answers)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyotp
from factories import PASSWORD, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.kernel.roles import Role


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def actions(session: Session) -> list[str]:
    return list(session.execute(select(LedgerEntry.action).order_by(LedgerEntry.seq)).scalars())


def account(client: TestClient, username: str) -> dict[str, Any]:
    listed = {a["username"]: a for a in client.get("/api/v1/admin/accounts").json()}
    return dict(listed[username])


# ── accounts: administration and the own account ─────────────────────────────────────────────

def test_the_administrator_creates_an_account_grants_and_revokes_a_role(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    login(app_client, "root")
    r = app_client.post("/api/v1/admin/accounts", json={
        "username": "new.inv", "display_name": "New Investigator",
        "password": "a long initial passphrase",
        "roles": [{"role": "investigator", "study": "S1", "site": "H01"}]})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "new.inv" and r.json()["id"]
    assert account(app_client, "new.inv")["active"] is True

    r = app_client.post("/api/v1/admin/accounts/grant",
                        json={"username": "new.inv", "role": "monitor", "study": "S1"})
    assert (r.status_code, r.json()) == (200, {"status": "granted"}), r.text
    granted = account(app_client, "new.inv")["roles"]
    assert len(granted) == 2 and any("monitor" in g for g in granted)

    r = app_client.post("/api/v1/admin/accounts/revoke",
                        json={"username": "new.inv", "role": "monitor", "study": "S1"})
    assert (r.status_code, r.json()) == (200, {"status": "revoked"}), r.text
    assert not any("monitor" in g for g in account(app_client, "new.inv")["roles"])
    assert {"account.role_grant", "account.role_revoke"} <= set(actions(session))

    other = TestClient(app_client.app)
    me = login(other, "new.inv", "a long initial passphrase")
    assert me["username"] == "new.inv"


def test_the_administrator_unlocks_resets_the_password_and_ends_sessions(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1")
    other = TestClient(app_client.app)
    for _ in range(5):
        other.post("/api/v1/auth/login", json={"username": "li.na", "password": "nope"})
    assert other.post("/api/v1/auth/login", json={
        "username": "li.na", "password": PASSWORD}).status_code == 423
    login(app_client, "root")
    assert account(app_client, "li.na")["locked_until"] is not None

    r = app_client.post("/api/v1/admin/accounts/unlock", json={"username": "li.na"})
    assert (r.status_code, r.json()) == (200, {"status": "unlocked"}), r.text
    assert account(app_client, "li.na")["locked_until"] is None
    login(other, "li.na")

    r = app_client.post("/api/v1/admin/accounts/reset-password",
                        json={"username": "li.na", "password": "a fresh temporary passphrase"})
    assert r.status_code == 200, r.text
    assert r.json()["status"].startswith("password reset")
    assert account(app_client, "li.na")["must_change_password"] is True
    assert login(other, "li.na", "a fresh temporary passphrase")["must_change_password"] is True

    r = app_client.post("/api/v1/admin/accounts/revoke-sessions", json={"username": "li.na"})
    assert r.status_code == 200 and r.json()["status"] == "sessions ended", r.text
    assert r.json()["ended"] >= 1
    assert other.get("/api/v1/me").status_code == 401


def test_a_user_changes_the_password_and_enrols_then_the_admin_resets_the_second_factor(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1",
              must_change_password=True)
    assert login(app_client, "li.na")["must_change_password"] is True
    r = app_client.post("/api/v1/account/password", json={
        "current_password": PASSWORD, "new_password": "my very own new passphrase"})
    assert (r.status_code, r.json()) == (200, {"status": "password changed"}), r.text
    assert login(app_client, "li.na", "my very own new passphrase")[
        "must_change_password"] is False

    r = app_client.post("/api/v1/account/second-factor/start")
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/") and secret in \
        r.json()["otpauth_uri"]
    r = app_client.post("/api/v1/account/second-factor/confirm",
                        json={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert codes and all(isinstance(c, str) and c for c in codes)
    assert app_client.get("/api/v1/me").json()["second_factor"] is True

    login(app_client, "root")
    assert account(app_client, "li.na")["totp_enabled"] is True
    r = app_client.post("/api/v1/admin/accounts/reset-second-factor", json={"username": "li.na"})
    assert (r.status_code, r.json()) == (200, {"status": "second factor reset"}), r.text
    assert account(app_client, "li.na")["totp_enabled"] is False


_ = dt  # used by the sections below
