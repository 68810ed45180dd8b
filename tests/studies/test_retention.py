"""The retention review (§11.3.4.6 a4): five years after a study ends, and every five years on,
it appears in the data security office's review list until a signed decision is recorded."""

from __future__ import annotations

import datetime as dt

from factories import PASSWORD, make_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.kernel.roles import Role
from studies.retention.service import current_due, review_due

TODAY = dt.datetime.now(dt.UTC).date()


def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_review_dates_every_five_years() -> None:
    end = dt.date(2016, 2, 29)
    assert [review_due(end, n) for n in (1, 2)] == [dt.date(2021, 2, 28), dt.date(2026, 2, 28)]
    assert current_due(end, dt.date(2021, 2, 27)) is None
    assert current_due(end, dt.date(2021, 2, 28)) == (1, dt.date(2021, 2, 28))
    assert current_due(end, dt.date(2027, 1, 1)) == (2, dt.date(2026, 2, 28))


def test_ended_study_appears_five_years_on_until_a_signed_decision(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    old = make_study(session, ledger, "OLD-2015")
    make_study(session, ledger, "NEW-2024")
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study="OLD-2015")
    make_user(session, ledger, "dm2", Role.DATA_MANAGER, study="NEW-2024")
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)
    ended = TODAY.replace(year=TODAY.year - 6) if (TODAY.month, TODAY.day) != (2, 29) \
        else dt.date(TODAY.year - 6, 2, 28)
    login(app_client, "dm")
    r = app_client.put("/api/v1/studies/OLD-2015/end-date",
                       json={"ended_on": ended.isoformat(), "reason": "last visit done"})
    assert r.status_code == 200 and r.json()["first_review_due"] == review_due(
        ended, 1).isoformat()
    r = app_client.put("/api/v1/studies/OLD-2015/end-date",
                       json={"ended_on": (TODAY + dt.timedelta(days=1)).isoformat(),
                             "reason": "x"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "ended_on"
    # Only the study's own data manager records its end; others are refused.
    r = app_client.put("/api/v1/studies/NEW-2024/end-date",
                       json={"ended_on": ended.isoformat(), "reason": "x"})
    assert r.status_code == 403
    login(app_client, "dm2")
    r = app_client.put("/api/v1/studies/NEW-2024/end-date",
                       json={"ended_on": (TODAY - dt.timedelta(days=30)).isoformat(),
                             "reason": "closed"})
    assert r.status_code == 200
    assert app_client.get("/api/v1/retention/due").status_code == 403

    login(app_client, "dso")
    due = app_client.get("/api/v1/retention/due").json()
    assert [(d["study"], d["due_on"], d["review_number"]) for d in due] == [
        ("OLD-2015", review_due(ended, 1).isoformat(), 1)]
    body = {"due_on": review_due(ended, 1).isoformat(), "decision": "shred", "reason": "x",
            "username": "dso", "password": PASSWORD}
    r = app_client.post("/api/v1/studies/OLD-2015/retention-reviews", json=body)
    assert r.status_code == 422  # not a decision
    body["decision"] = "archive"
    body["password"] = "wrong password!"
    r = app_client.post("/api/v1/studies/OLD-2015/retention-reviews", json=body)
    assert r.status_code == 422 and "wrong password" in r.json()["error"]["message"]
    assert r.json()["error"]["field"] == "password"  # a signing mistake, the session kept
    body["password"] = PASSWORD
    body["reason"] = "analysis published; move to the archive"
    r = app_client.post("/api/v1/studies/OLD-2015/retention-reviews", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["decision"] == "archive" and out["decided_by"] == "dso"
    assert "Retention review: archive" in out["signature"]
    assert out["next_review_due"] == review_due(ended, 2).isoformat()
    assert app_client.get("/api/v1/retention/due").json() == []
    r = app_client.post("/api/v1/studies/OLD-2015/retention-reviews", json=body)
    assert r.status_code == 409
    # Once decided, the end date cannot move.
    make_user(session, ledger, "dm3", Role.DATA_MANAGER, study="OLD-2015")
    login(app_client, "dm3")
    r = app_client.put("/api/v1/studies/OLD-2015/end-date",
                       json={"ended_on": (ended - dt.timedelta(days=1)).isoformat(),
                             "reason": "typo"})
    assert r.status_code == 409
    acts = session.execute(select(LedgerEntry.action, LedgerEntry.reason).where(
        LedgerEntry.study == old.code)).all()
    assert ("retention.end_date", "last visit done") in acts
    assert ("retention.review", "analysis published; move to the archive") in acts
    assert any(a == "signature.sign" for a, _ in acts)
