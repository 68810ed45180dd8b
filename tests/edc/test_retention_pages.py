"""The retention review through the pages (§11.3.4.6 a4): the study's end date on the set-up
page, the data security office's review list with a signed decision per study (a signing
mistake is a 422 on the same page with the session kept), and the decisions recorded."""

from __future__ import annotations

import datetime as dt

from factories import PASSWORD, make_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_study_pages import csrf, soup
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts.models import Signature
from studies.kernel.roles import Role
from studies.retention.models import RetentionReview
from studies.retention.service import review_due

TODAY = dt.datetime.now(dt.UTC).date()
ENDED = dt.date(TODAY.year - 6, TODAY.month, min(TODAY.day, 28))


def reviews(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(RetentionReview)).scalar_one())


def test_the_study_page_sets_the_end_date_and_names_the_first_review(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, "END-1")
    make_study(session, ledger, "END-2")
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study="END-1")
    login(app_client, "dm")
    page = soup(app_client.get("/studies/END-1").text)
    assert 'The study has not ended' in page.select_one(".end-date").text
    form = page.find("form", {"action": "/studies/END-1/end-date"})
    assert form is not None and form.find("input", {"name": "ended_on", "type": "date"})
    token = csrf(app_client, "/studies/END-1")

    r = app_client.post("/studies/END-1/end-date", data={
        "csrf_token": token, "ended_on": (TODAY + dt.timedelta(days=1)).isoformat(),
        "reason": "closed"})
    assert r.status_code == 422
    assert 'field: ended_on' in r.text and "cannot be in the future" in r.text
    r = app_client.post("/studies/END-1/end-date", data={
        "csrf_token": token, "ended_on": "30/06/2020", "reason": "closed"})
    assert r.status_code == 422
    assert 'field: ended_on' in r.text and "not a date (YYYY-MM-DD)" in r.text
    r = app_client.post("/studies/END-1/end-date", data={
        "csrf_token": token, "ended_on": ENDED.isoformat(), "reason": ""})
    assert r.status_code == 422 and 'field: reason' in r.text and "reason: required" in r.text
    assert "The study has not ended" in app_client.get("/studies/END-1").text  # nothing written

    r = app_client.post("/studies/END-1/end-date", data={
        "csrf_token": token, "ended_on": ENDED.isoformat(), "reason": "last visit done"},
        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/studies/END-1"
    shown = soup(app_client.get("/studies/END-1").text).select_one(".end-date").text
    assert ENDED.isoformat() in shown and review_due(ENDED, 1).isoformat() in shown
    assert session.execute(select(LedgerEntry.reason).where(
        LedgerEntry.action == "retention.end_date", LedgerEntry.study == "END-1")
    ).scalars().all() == ["last visit done"]
    # Another study's data manager may not: no field on the page, and the post is refused.
    r = app_client.post("/studies/END-2/end-date", data={
        "csrf_token": token, "ended_on": ENDED.isoformat(), "reason": "x"})
    assert r.status_code == 403


def test_the_security_officer_signs_a_decision_on_the_review_page(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, "OLD-2015")
    make_study(session, ledger, "NEW-2024")
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study="OLD-2015")
    make_user(session, ledger, "dm2", Role.DATA_MANAGER, study="NEW-2024")
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)
    for user, code, ended in (("dm", "OLD-2015", ENDED),
                              ("dm2", "NEW-2024", TODAY - dt.timedelta(days=30))):
        login(app_client, user)
        r = app_client.post(f"/studies/{code}/end-date", data={
            "csrf_token": csrf(app_client, f"/studies/{code}"), "ended_on": ended.isoformat(),
            "reason": "ended"}, follow_redirects=False)
        assert r.status_code == 303, r.text
    assert 'href="/retention"' not in app_client.get("/").text
    assert app_client.get("/retention").status_code == 403

    login(app_client, "dso")
    home = soup(app_client.get("/").text)
    assert home.find("a", {"href": "/retention"}).text == 'Retention review'
    page = soup(app_client.get("/retention").text)
    due = page.select("section.due")
    assert [s["id"] for s in due] == ["due-OLD-2015"]  # the study ended a month ago is not due
    assert due[0].select_one(".ended").text == ENDED.isoformat()
    assert due[0].select_one(".due-on").text == review_due(ENDED, 1).isoformat()
    assert due[0].select_one(".number").text == "1"
    form = due[0].find("form")
    assert form["action"] == "/retention/OLD-2015"
    assert {o["value"] for o in form.find_all("option")} == {"keep", "archive", "destroy"}
    assert form.find("input", {"name": "username"}) and form.find("input", {"name": "password"})
    assert 'None' in page.select_one("table.decisions").text

    token = csrf(app_client, "/retention")
    body = {"csrf_token": token, "due_on": review_due(ENDED, 1).isoformat(),
            "decision": "archive", "reason": "analysis published; move to the archive",
            "username": "dso", "password": "wrong password!"}
    r = app_client.post("/retention/OLD-2015", data=body, follow_redirects=False)
    assert r.status_code == 422  # a signing mistake: on the same page, at the study's form
    err = soup(r.text).select_one("#due-OLD-2015 .sign-error")
    assert 'wrong password' in err.text and 'field: password' in err.text
    assert app_client.get("/retention").status_code == 200  # the session is kept
    assert session.execute(select(LedgerEntry.outcome).where(
        LedgerEntry.action == "signature.sign", LedgerEntry.actor == "dso")
    ).scalars().all() == ["failure"]  # the refusal is audited
    r = app_client.post("/retention/OLD-2015", data={**body, "password": PASSWORD,
                                                     "reason": "  "})
    assert r.status_code == 422
    err = soup(r.text).select_one("#due-OLD-2015 .sign-error")
    assert "reason: required" in err.text and 'field: reason' in err.text
    r = app_client.post("/retention/OLD-2015", data={**body, "password": PASSWORD,
                                                     "decision": "shred"})
    assert r.status_code == 422
    assert 'field: decision' in soup(r.text).select_one("#due-OLD-2015 .sign-error").text
    r = app_client.post("/retention/OLD-2015", data={**body, "password": PASSWORD,
                                                     "reason": "a\x00b"})
    assert r.status_code == 422 and "U+0000" in r.text
    assert reviews(session) == 0  # nothing recorded by a refused decision
    assert session.execute(select(func.count()).select_from(Signature)).scalar_one() == 0

    r = app_client.post("/retention/OLD-2015", data={**body, "password": PASSWORD},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/retention"
    assert reviews(session) == 1
    page = soup(app_client.get("/retention").text)
    assert page.select("section.due") == []
    row = page.select("table.decisions tbody tr")
    assert len(row) == 1
    cells = [td.text for td in row[0].find_all("td")]
    assert cells[:4] == ["OLD-2015", review_due(ENDED, 1).isoformat(), 'Archive',
                         "analysis published; move to the archive"]
    assert "Dso (dso)" in cells[4] and "Retention review: archive" in cells[4]
    # A second decision for the same review is refused.
    r = app_client.post("/retention/OLD-2015", data={**body, "password": PASSWORD})
    assert r.status_code == 409 and reviews(session) == 1
