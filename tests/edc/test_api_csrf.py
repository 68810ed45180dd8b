"""CSRF on the JSON API: a write made with the session cookie needs a JSON content type (or
the X-CSRF-Token header) and no foreign Origin / cross-site Sec-Fetch-Site; refused 403,
audited, nothing changed. API tokens are not cookies: unchanged."""

from __future__ import annotations

from factories import PASSWORD, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts.models import ApiToken
from studies.kernel.roles import Role

EVIL = "https://evil.example"


def login(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "li.na", "password": PASSWORD})
    assert r.status_code == 200, r.text


def issue_token(client: TestClient) -> tuple[str, str]:
    r = client.post("/api/v1/tokens", json={"name": "script", "role": "monitor",
                                            "study": "S1", "days": 7})
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["token"]


def revoked(session: Session, token_id: str) -> bool:
    return session.execute(select(ApiToken.revoked_at).where(ApiToken.id == token_id)
                           ).scalar_one() is not None


def denials(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.action == "access.denied")).scalar_one())


def test_cross_site_writes_with_the_cookie_are_refused(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.MONITOR, study="S1")
    login(app_client)
    token_id, _ = issue_token(app_client)
    url = f"/api/v1/tokens/{token_id}/revoke"
    before = denials(session)
    for headers in ({"Content-Type": "text/plain", "Origin": EVIL},       # the found attack
                    {"Content-Type": "text/plain"},                       # a form-like type
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    {},                                                   # no type at all
                    {"Content-Type": "application/json", "Origin": EVIL},
                    {"Content-Type": "application/json", "Origin": "null"},
                    {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
                    {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}):
        r = app_client.post(url, content=b"", headers=headers)
        assert r.status_code == 403, (headers, r.text)
    assert not revoked(session, token_id)
    assert denials(session) == before + 8


def test_same_origin_json_writes_and_the_csrf_header_pass(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.MONITOR, study="S1")
    login(app_client)
    token_id, _ = issue_token(app_client)
    r = app_client.post(f"/api/v1/tokens/{token_id}/revoke", json={},
                        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text
    assert revoked(session, token_id)
    token_id, _ = issue_token(app_client)
    app_client.get("/login")  # a page sets the edc_csrf cookie
    r = app_client.post(f"/api/v1/tokens/{token_id}/revoke", content=b"",
                        headers={"Content-Type": "text/plain",
                                 "X-CSRF-Token": app_client.cookies["edc_csrf"]})
    assert r.status_code == 200, r.text
    r = app_client.post(f"/api/v1/tokens/{issue_token(app_client)[0]}/revoke", content=b"",
                        headers={"Content-Type": "text/plain", "X-CSRF-Token": "guess"})
    assert r.status_code == 403, r.text


def test_api_tokens_are_not_held_to_the_cookie_rule(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.MONITOR, study="S1")
    login(app_client)
    token_id, token = issue_token(app_client)
    app_client.cookies.clear()
    r = app_client.post(f"/api/v1/tokens/{token_id}/revoke", content=b"",
                        headers={"Authorization": f"Bearer {token}",
                                 "Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert revoked(session, token_id)
