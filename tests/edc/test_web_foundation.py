"""The web layer: login and logout audited, error shape, CSRF, security headers, limits."""

from __future__ import annotations

from bs4 import BeautifulSoup
from factories import PASSWORD, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.kernel.roles import Role


def entries(session: Session, action: str) -> list[LedgerEntry]:
    return list(session.execute(
        select(LedgerEntry).where(LedgerEntry.action == action).order_by(LedgerEntry.seq)
    ).scalars())


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    token = BeautifulSoup(page.text, "html.parser").find("input", {"name": "csrf_token"})["value"]
    r = client.post("/login", data={"username": username, "password": password,
                                    "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_login_page_logs_in_and_shows_roles(app_client: TestClient, session: Session,
                                             ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1")
    login(app_client, "li.na")
    home = BeautifulSoup(app_client.get("/").text, "html.parser")
    assert 'Investigator — S1' in [li.get_text() for li in home.select("main li")]
    assert home.select_one(".flash").get_text() == 'logged in'
    [entry] = entries(session, "auth.login")
    assert (entry.actor, entry.outcome, entry.client) == ("li.na", "success", "testclient")


def test_failed_login_is_refused_and_audited(app_client: TestClient, session: Session,
                                             ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    r = app_client.post("/api/v1/auth/login", json={"username": "li.na", "password": "wrong!"})
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "not_authenticated", "field": None, "clause": None,
                                  "message": 'wrong username or password'}}
    [entry] = entries(session, "auth.login")
    assert (entry.actor, entry.outcome) == ("li.na", "failure")


def test_logout_ends_the_server_side_session(app_client: TestClient, session: Session,
                                             ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    assert app_client.post("/api/v1/auth/login",
                           json={"username": "li.na", "password": PASSWORD}).status_code == 200
    assert app_client.get("/api/v1/me").json()["username"] == "li.na"
    cookie = app_client.cookies.get("edc_session")
    assert app_client.post("/api/v1/auth/logout", json={}).status_code == 200
    app_client.cookies.set("edc_session", cookie)  # replaying the old cookie does not work
    assert app_client.get("/api/v1/me").status_code == 401
    assert len(entries(session, "auth.logout")) == 1


def test_form_post_without_csrf_token_is_refused(app_client: TestClient, session: Session,
                                                 ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    app_client.get("/login")
    r = app_client.post("/login", data={"username": "li.na", "password": PASSWORD,
                                        "csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    assert "form has expired" in BeautifulSoup(r.text, "html.parser").select_one(".error").text
    assert entries(session, "auth.login") == []


def test_pages_redirect_to_login_and_api_answers_401(app_client: TestClient) -> None:
    r = app_client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert app_client.get("/api/v1/me").json()["error"]["code"] == "not_authenticated"


def test_security_headers_on_every_response(app_client: TestClient) -> None:
    for path in ("/login", "/api/v1/health", "/api/v1/nowhere"):
        h = app_client.get(path).headers
        assert "script-src 'self'" in h["content-security-policy"]
        assert "unsafe-inline" not in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"


def test_session_cookie_flags(app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    r = app_client.post("/api/v1/auth/login", json={"username": "li.na", "password": PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_bad_bodies_get_4xx_with_the_error_shape(app_client: TestClient, session: Session,
                                                 ledger: Ledger) -> None:
    r = app_client.post("/api/v1/auth/login", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = app_client.post("/api/v1/auth/login", content=b'{"username": "\xff\xfe", "password": 1}',
                        headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    r = app_client.post("/api/v1/auth/login", json={"username": ["x"], "password": "y"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "username"
    r = app_client.post("/api/v1/auth/login", content=b"x" * 3_000_000,
                        headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = app_client.post("/api/v1/auth/login",
                        json={"username": "' OR 1=1 --", "password": "<script>"})
    assert r.status_code == 401
    assert [e.outcome for e in entries(session, "auth.login")] == ["failure"]


def test_auditor_sees_the_ledger_verified_and_others_are_refused(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "audrey", Role.AUDITOR)
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    login(app_client, "li.na")
    r = app_client.get("/api/v1/audit/verify")
    assert r.status_code == 403
    denied = entries(session, "access.denied")
    assert [(e.actor, e.entity_id) for e in denied] == [("li.na", "GET /api/v1/audit/verify")]
    app_client.cookies.clear()
    login(app_client, "audrey")
    body = app_client.get("/api/v1/audit/verify").json()
    assert body["intact"] is True and body["entries"] >= 5
    page = BeautifulSoup(app_client.get("/audit").text, "html.parser")
    assert page.select_one("p.ok").get_text().startswith("✔ ledger intact")
