"""Account end dates (§11.3.2, issue 15 item 5): the administrator sets the last day an account
may be used (API, page, CLI); after it the account cannot log in, its sessions end and its API
tokens stop working; the account list shows it."""

from __future__ import annotations

import datetime as dt

from bs4 import BeautifulSoup
from factories import PASSWORD, make_user
from fastapi.testclient import TestClient
from pages_util import ENGLISH
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.kernel.roles import Role

TODAY = dt.datetime.now(dt.UTC).date()


def listed(client: TestClient) -> dict[str, dict[str, object]]:
    return {a["username"]: a for a in client.get("/api/v1/admin/accounts").json()}


def test_an_ended_account_cannot_log_in_and_its_token_stops(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "it.admin", Role.ADMIN)
    make_user(session, ledger, "leaver", Role.SPONSOR, study="S1")
    login(app_client, "leaver")
    r = app_client.post("/api/v1/tokens", json={"name": "nightly", "role": "sponsor",
                                                "study": "S1", "days": 7})
    token = r.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    session_of_leaver = TestClient(app_client.app, base_url="http://testserver", headers=ENGLISH)
    login(session_of_leaver, "leaver")
    app_client.cookies.clear()
    login(app_client, "it.admin")
    r = app_client.post("/api/v1/admin/accounts/end-date",
                        json={"username": "it.admin", "end_date": "2020-01-01"})
    assert r.status_code == 422 and "your own account" in r.text
    # bad input: 422 naming the field, nothing written
    r = app_client.post("/api/v1/admin/accounts/end-date",
                        json={"username": "leaver", "end_date": "2026-13-40"})
    assert r.status_code == 422 and "end_date" in r.text and "a date as YYYY-MM-DD" in r.text
    assert listed(app_client)["leaver"]["end_date"] is None
    # ending today: still usable through today
    r = app_client.post("/api/v1/admin/accounts/end-date",
                        json={"username": "leaver", "end_date": TODAY.isoformat()})
    assert r.status_code == 200 and listed(app_client)["leaver"]["end_date"] == TODAY.isoformat()
    assert app_client.get("/api/v1/me", headers=bearer).status_code == 200
    assert session_of_leaver.get("/api/v1/me").status_code == 200
    # ended yesterday: login, sessions and tokens refused
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    r = app_client.post("/api/v1/admin/accounts/end-date",
                        json={"username": "leaver", "end_date": yesterday})
    assert r.status_code == 200 and listed(app_client)["leaver"]["end_date"] == yesterday
    page = BeautifulSoup(app_client.get("/admin/accounts").text, "html.parser")
    row = next(tr for tr in page.select("tbody tr") if tr.td.get_text() == "leaver")
    assert yesterday in row.get_text()
    assert session_of_leaver.get("/api/v1/me").status_code == 401  # its session has ended
    other = TestClient(app_client.app, base_url="http://testserver", headers=ENGLISH)
    r = other.post("/api/v1/auth/login", json={"username": "leaver", "password": PASSWORD})
    assert r.status_code == 401
    app_client.cookies.clear()
    assert app_client.get("/api/v1/me", headers=bearer).status_code == 401
    uses = session.execute(select(LedgerEntry.reason).where(
        LedgerEntry.action == "token.use").order_by(LedgerEntry.seq)).scalars().all()
    assert uses[-1] == "account ended"
    changes = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "account.end_date")).scalars().all()
    assert len(changes) == 2


def test_the_end_date_page_form_sets_and_clears_it(app_client: TestClient, session: Session,
                                                   ledger: Ledger) -> None:
    make_user(session, ledger, "it.admin", Role.ADMIN)
    make_user(session, ledger, "leaver", Role.INVESTIGATOR, study="S1")
    login(app_client, "it.admin")
    page = BeautifulSoup(app_client.get("/admin/accounts").text, "html.parser")
    form = page.find("form", action="/admin/accounts/end-date")
    token = form.find("input", {"name": "csrf_token"})["value"]
    r = app_client.post("/admin/accounts/end-date", data={
        "username": "leaver", "end_date": "2027-06-30", "csrf_token": token})
    assert r.status_code in (200, 303)
    assert listed(app_client)["leaver"]["end_date"] == "2027-06-30"
    r = app_client.post("/admin/accounts/end-date", data={
        "username": "leaver", "end_date": "", "csrf_token": token})
    assert listed(app_client)["leaver"]["end_date"] is None


def test_password_change_refuses_the_username_and_a_recent_password_with_422(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1")
    login(app_client, "li.na")
    for new, rule in (("my-LI.NA-passphrase", "must not contain the username"),
                      (PASSWORD, "last 5 passwords")):
        r = app_client.post("/api/v1/account/password",
                            json={"current_password": PASSWORD, "new_password": new})
        assert r.status_code == 422 and rule in r.text and "new_password" in r.text, r.text
    login(app_client, "li.na")  # unchanged
