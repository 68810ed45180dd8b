"""Accounts on the web: second factor at login and enrolment by QR code, pending sessions,
rate limit (429), bearer tokens, the administrator's pages, the auditor's trail and its
streamed exports."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyotp
import pytest
from bs4 import BeautifulSoup
from conftest import app_with
from factories import PASSWORD, enrol_totp, make_user
from fastapi.testclient import TestClient
from pages_util import ENGLISH
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.settings import Settings
from edc.state import AppState
from studies.accounts import service as accounts
from studies.kernel.roles import Role

INSIDE = ("10.1.2.3", 50000)


@pytest.fixture
def strict(settings: Settings, engine: Engine, keys: keyring.Keyring, ledger: Ledger,
           session: Session) -> Iterator[tuple[TestClient, AppState]]:
    """A client from inside the hospital network (10.0.0.0/8), second factor enforced."""
    with app_with(settings, engine, keys, ledger, session, client=INSIDE,
                  second_factor_enforced=True, hospital_networks="10.0.0.0/8") as both:
        yield both


def soup(r: object) -> BeautifulSoup:
    return BeautifulSoup(r.text, "html.parser")  # type: ignore[attr-defined]


def csrf(client: TestClient) -> str:
    return soup(client.get("/login")).find("input", {"name": "csrf_token"})["value"]


def entries(session: Session, action: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(LedgerEntry.action == action)
                                .order_by(LedgerEntry.seq)).scalars())


def test_privileged_user_enrols_by_qr_code_and_gets_recovery_codes(
        strict: tuple[TestClient, AppState], session: Session, ledger: Ledger) -> None:
    client, state = strict
    make_user(session, ledger, "dm", Role.DATA_MANAGER)
    login(client, "dm")
    r = client.get("/", follow_redirects=False)  # held to the enrolment page
    assert (r.status_code, r.headers["location"]) == (303, "/account/second-factor")
    assert client.get("/api/v1/audit/verify").status_code == 403
    page = soup(client.get("/account/second-factor"))
    assert page.select_one("img.qr")["src"].startswith("data:image/svg+xml")
    secret = page.select_one("code.secret").get_text()
    r = client.post("/account/second-factor", data={"code": pyotp.TOTP(secret).now(),
                                                    "csrf_token": csrf(client)})
    codes = [li.get_text() for li in soup(r).select("ul.recovery-codes li")]
    assert r.status_code == 200 and len(codes) == 10
    assert client.get("/", follow_redirects=False).status_code == 200
    assert len(entries(session, "account.second_factor_enrol")) == 1


def test_login_form_takes_the_second_factor(strict: tuple[TestClient, AppState],
                                            session: Session, ledger: Ledger) -> None:
    client, state = strict
    user = make_user(session, ledger, "dm", Role.DATA_MANAGER)
    secret = enrol_totp(session, user, state.auth)
    r = client.post("/login", data={"username": "dm", "password": PASSWORD,
                                    "csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"  # 401 for a page
    r = client.post("/login", data={"username": "dm", "password": PASSWORD,
                                    "totp": pyotp.TOTP(secret).now(),
                                    "csrf_token": csrf(client)}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert client.get("/api/v1/me").json()["second_factor"] is True
    assert [e.reason for e in entries(session, "auth.login")] == [
        "second_factor_missing", "password+totp"]


def test_first_login_goes_to_the_password_page(app_client: TestClient, session: Session,
                                               ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, must_change_password=True)
    login(app_client, "li.na")
    r = app_client.get("/account", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/account/password")
    assert app_client.get("/api/v1/tokens").status_code == 403
    assert app_client.get("/api/v1/me").json()["pending"] == "password"


def test_too_many_login_attempts_get_429(app_client: TestClient, session: Session,
                                         ledger: Ledger) -> None:
    for _ in range(10):
        app_client.post("/api/v1/auth/login", json={"username": "li.na", "password": "x"})
    r = app_client.post("/api/v1/auth/login", json={"username": "li.na", "password": "x"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    assert int(r.headers["retry-after"]) > 0
    assert entries(session, "auth.login")[-1].reason == "rate_limited"


def test_lockout_over_the_api_and_the_admin_unlocks(app_client: TestClient, session: Session,
                                                   ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    make_user(session, ledger, "root", Role.ADMIN)
    for _ in range(5):
        app_client.post("/api/v1/auth/login", json={"username": "li.na", "password": "nope"})
    r = app_client.post("/api/v1/auth/login", json={"username": "li.na", "password": PASSWORD})
    assert r.status_code == 423 and r.json()["error"]["code"] == "locked"
    assert len(entries(session, "auth.lockout")) == 1
    login(app_client, "root")
    listed = {a["username"]: a for a in app_client.get("/api/v1/admin/accounts").json()}
    assert listed["li.na"]["locked_until"] is not None
    page = soup(app_client.get("/admin/accounts"))
    form = page.find("form", action="/admin/accounts/unlock")
    assert form is not None
    r = app_client.post("/admin/accounts/unlock", data={"username": "li.na",
                                                        "csrf_token": csrf(app_client)},
                        follow_redirects=False)
    assert r.status_code == 303
    app_client.cookies.clear()
    assert app_client.post("/api/v1/auth/login",
                           json={"username": "li.na", "password": PASSWORD}).status_code == 200


def test_admin_creates_an_account_and_revokes_sessions(app_client: TestClient,
                                                       session: Session,
                                                       ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    login(app_client, "root")
    r = app_client.post("/api/v1/admin/accounts", json={
        "username": "new.inv", "display_name": "New Investigator", "password": "short",
        "roles": [{"role": "investigator", "study": "S1", "site": "H01"}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    r = app_client.post("/admin/accounts", data={
        "username": "new.inv", "display_name": "New Investigator",
        "password": "a long initial passphrase", "role": "investigator", "study": "S1",
        "site": "H01", "csrf_token": csrf(app_client)}, follow_redirects=False)
    assert r.status_code == 303
    other = TestClient(app_client.app, base_url="http://testserver", headers=ENGLISH)
    login(other, "new.inv", "a long initial passphrase")
    r = app_client.post("/api/v1/admin/accounts/revoke-sessions", json={"username": "new.inv"})
    assert r.json()["ended"] == 1
    assert other.get("/api/v1/me").status_code == 401
    rows = [tr.find_all("td")[0].get_text() for tr in
            soup(app_client.get("/admin/accounts")).select("tbody tr")]
    assert "new.inv" in rows


def test_bearer_token_for_a_machine_client(app_client: TestClient, session: Session,
                                           ledger: Ledger) -> None:
    make_user(session, ledger, "sponsor.bot", Role.SPONSOR, study="S1")
    login(app_client, "sponsor.bot")
    r = app_client.post("/api/v1/tokens", json={"name": "nightly", "role": "sponsor",
                                                "study": "S1", "days": 7})
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    app_client.cookies.clear()
    me = app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["via_token"] is True and me["roles"] == [
        {"role": "sponsor", "study": "S1", "site": None}]
    assert len(entries(session, "token.use")) == 1
    # a bearer token is for the API only: pages ignore it
    assert app_client.get("/", headers={"Authorization": f"Bearer {token}"},
                          follow_redirects=False).status_code == 303
    login(app_client, "sponsor.bot")
    assert app_client.post(f"/api/v1/tokens/{token_id}/revoke", json={}).status_code == 200
    app_client.cookies.clear()
    r = app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert entries(session, "token.use")[-1].reason == "revoked"


def test_auditor_filters_the_trail_and_exports_it_streamed(app_client: TestClient,
                                                           session: Session,
                                                           ledger: Ledger) -> None:
    for i in range(30):
        ledger.append(session, actor="inv", action="form.save", entity_type="form",
                      entity_id=str(i), study="S1", subject=f"S1-{i:03d}")
    make_user(session, ledger, "aud", Role.AUDITOR)
    login(app_client, "aud")
    page = soup(app_client.get("/audit/entries?action=form.save&subject=S1-007"))
    cells = [[td.get_text() for td in tr.find_all("td")] for tr in page.select("tbody tr")]
    assert len(cells) == 1 and cells[0][6] == "S1-007"
    assert app_client.get("/audit/entries?since=yesterday").status_code == 422
    with app_client.stream("GET", "/api/v1/audit/export?format=csv&study=S1") as r:
        assert r.status_code == 200 and "content-length" not in r.headers
        assert r.headers["content-type"].startswith("text/csv")
        body = b"".join(r.iter_bytes()).decode("utf-8-sig")
    assert body.count("form.save") == 30
    r = app_client.get("/audit/export?format=odm&user=inv")
    assert r.headers["content-type"] == "application/xml" and r.text.count("<AuditRecord ") == 30
    assert len(entries(session, "audit.export")) == 2
    since = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert app_client.get(f"/api/v1/audit/entries?since={since}").json()["entries"] == []


def test_the_administrator_is_refused_the_trail_and_the_refusal_is_audited(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    login(app_client, "root")
    assert app_client.get("/api/v1/audit/export").status_code == 403
    [denied] = entries(session, "access.denied")
    assert (denied.actor, denied.entity_id) == ("root", "GET /api/v1/audit/export")


def test_signature_is_shown_with_name_time_and_meaning(session: Session,
                                                       ledger: Ledger) -> None:
    from studies.accounts.signatures import content_hash, sign

    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    _, actor = accounts.login(session, ledger, username="pi", password=PASSWORD, client=None,
                              config=accounts.AuthConfig(second_factor_enforced=False))
    s = sign(session, ledger, actor=actor, username="pi", password=PASSWORD,
             meaning="approve unlock", content_hash=content_hash(b"x"), entity_type="unlock",
             entity_id="1")
    name, when, meaning = s.line().split(" · ")
    assert name == "Pi (pi)" and meaning == "approve unlock"
    assert dt.datetime.strptime(when, "%Y-%m-%d %H:%M:%S UTC")


def test_signatures_are_shown_with_name_time_and_meaning_on_pages() -> None:
    from edc.web.signatures import signature_list
    from studies.accounts.signatures import SignatureView

    when = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
    html = str(signature_list([SignatureView("1", "pi", "Zhang Wei", "approve unlock", when,
                                             "0" * 64)]))
    li = BeautifulSoup(html, "html.parser").select_one("ul.signatures li")
    assert li.get_text() == "Zhang Wei (pi) · 2026-11-28 09:30:00 UTC · approve unlock"


SECRET_NAMES = {"password", "new_password", "current_password", "totp", "code", "token",
                "secret", "recovery_code"}


def test_no_route_takes_a_secret_in_its_url(app_client: TestClient) -> None:
    from fastapi.routing import APIRoute

    from edc.policy import iter_routes

    bad = []
    for route in iter_routes(app_client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute):
            continue
        params = route.dependant.query_params + route.dependant.path_params
        for dep in route.dependant.dependencies:
            params += dep.query_params + dep.path_params
        # ``{code}`` in a subject path is the subject code (a pseudonym), not a one-time code.
        bad += [f"{route.path}: {p.name}" for p in params if p.name in SECRET_NAMES
                and not (p.name == "code" and "/subjects/{code}" in route.path)]
    assert bad == []


def test_a_failed_page_login_says_why_on_the_login_page(app_client: TestClient) -> None:
    r = app_client.post("/login", data={"username": "nobody", "password": "x" * 12,
                                        "csrf_token": csrf(app_client)})
    assert soup(r).select_one(".flash").get_text() == accounts.WRONG
