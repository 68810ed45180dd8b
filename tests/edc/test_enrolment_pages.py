"""Enrolment with consent over the API and on the enrol page (§11.3.4.2): the page shows the
consent form text and takes the signed version or an approved waiver with the enrolment; a
refusal names the field or shows why enrolment is closed, and writes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import (
    PASSWORD,
    SETUP,
    approve,
    consent_to,
    make_active_study,
    make_committee,
    make_protocol,
    make_study,
    make_user,
    synthetic_identity,
)
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.consent.models import ConsentRecord
from studies.ethics import service as ethics
from studies.ethics.schemas import WaiverDecisionIn, WaiverIn
from studies.kernel.roles import Role
from studies.registry import service as registry
from studies.registry.models import Study
from studies.subjects.models import CodeIndexEntry, Subject

STUDY = "EP-2026-01"
CST = dt.timezone(dt.timedelta(hours=8))


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def login(client: TestClient, username: str) -> None:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def written(session: Session) -> dict[str, int]:
    return {t.__name__: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Subject, CodeIndexEntry, ConsentRecord, LedgerEntry)}


def signed_at_local() -> str:
    return (dt.datetime.now(CST) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def study(session: Session, ledger: Ledger) -> Study:
    s, _ = make_active_study(session, STUDY, sites=("S01", "S02"), ledger=ledger)
    make_user(session, ledger, "inv.zhou", Role.INVESTIGATOR, study=STUDY)
    return s


def enrol_json(client: TestClient, n: int, consent: dict[str, Any] | None,
               study: str = STUDY) -> Any:
    body: dict[str, Any] = {"site": "S01", **synthetic_identity(n)}
    if consent is not None:
        body["consent"] = consent
    return client.post(f"/api/v1/studies/{study}/subjects", json=body)


def test_api_enrolment_without_consent_is_422_naming_consent(
        app_client: TestClient, session: Session, study: Study) -> None:
    login(app_client, "inv.zhou")
    before = written(session)
    r = enrol_json(app_client, 1, None)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "consent")
    r = enrol_json(app_client, 1, {"consent_type": "informed"})  # no signing time
    assert (r.status_code, r.json()["error"]["field"]) == (422, "consent.given_at")
    assert written(session) == before


def test_api_enrolment_with_informed_consent_records_it(
        app_client: TestClient, session: Session, study: Study) -> None:
    login(app_client, "inv.zhou")
    r = enrol_json(app_client, 2, consent_to(session, study).model_dump(mode="json"))
    assert r.status_code == 201, r.text
    subject = session.execute(select(Subject).where(Subject.code == r.json()["code"])).scalar_one()
    history = app_client.get(f"/api/v1/studies/{STUDY}/subjects/{subject.id}/consents")
    assert history.status_code == 200, history.text
    [rec] = history.json()
    assert (rec["consent_type"], rec["form_version"], rec["scopes"], rec["obtained_by"]) == \
        ("informed", "1.0", ["study"], "inv.zhou")
    [row] = app_client.get(f"/api/v1/studies/{STUDY}/consent").json()["subjects"]
    assert (row["code"], row["entry_allowed"]) == (subject.code, True)  # data entry may begin


def test_api_enrolment_is_refused_with_a_consent_form_of_another_study(
        app_client: TestClient, session: Session, ledger: Ledger, study: Study) -> None:
    other, _ = make_active_study(session, "EP-2026-02", ledger=ledger)
    login(app_client, "inv.zhou")
    before = written(session)
    r = enrol_json(app_client, 3, consent_to(session, other).model_dump(mode="json"))
    assert (r.status_code, r.json()["error"]["field"]) == (404, "form_id")
    assert written(session) == before


def test_api_enrolment_is_refused_without_a_current_approval(
        app_client: TestClient, session: Session, ledger: Ledger, study: Study) -> None:
    registry.amend_protocol(session, ledger, actor=SETUP, study_code=STUDY, summary="new arm",
                            protocol=make_protocol("2.0"))
    login(app_client, "inv.zhou")
    before = written(session)
    r = enrol_json(app_client, 4, consent_to(session, study).model_dump(mode="json"))
    err = r.json()["error"]
    assert (r.status_code, err["field"], err["clause"]) == (422, "study", "§11.3.4.2")
    assert "not been approved" in err["message"]
    assert written(session) == before


def test_enrol_page_shows_the_consent_form_and_enrols_with_it(
        app_client: TestClient, session: Session, study: Study) -> None:
    login(app_client, "inv.zhou")
    page = soup(app_client.get(f"/studies/{STUDY}/subjects/enrol").text)
    assert page.select_one(".consent-text[lang=zh]").get_text() == "我自愿参加本研究。"
    assert page.select_one(".consent-text[lang=en]").get_text() == "I agree to take part."
    [signed] = page.select("input[type=radio][name=consent]")
    checked = [c["value"] for c in page.select("input[name=scopes]") if c.has_attr("checked")]
    assert checked == ["study"]
    assert page.select_one("input[name=given_at]")["type"] == "datetime-local"
    token = page.find("input", {"name": "csrf_token"})["value"]
    form = {"csrf_token": token, "site": "S02", **synthetic_identity(5)}
    r = app_client.post(f"/studies/{STUDY}/subjects", follow_redirects=False,
                        data={**form, "given_at": signed_at_local()})  # no consent chosen
    assert r.status_code == 422
    error = soup(r.text)  # the form again, the error beside the consent choice, input kept
    assert "consent" in error.select_one("#field-consent .field-error").get_text()
    assert error.select_one("input[name=name]")["value"] == form["name"]
    assert session.execute(select(Subject)).first() is None
    r = app_client.post(f"/studies/{STUDY}/subjects", follow_redirects=False,
                        data={**form, "consent": signed["value"], "scopes": ["study", "contact"],
                              "given_at": signed_at_local()})
    assert r.status_code == 303, r.text
    subject = session.execute(select(Subject)).scalar_one()
    rec = session.execute(select(ConsentRecord)).scalar_one()
    assert (rec.subject_id, rec.scopes) == (subject.id, ["contact", "study"])


def test_enrol_page_of_a_study_without_approval_shows_why_and_no_form(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, STUDY)
    make_user(session, ledger, "inv.zhou", Role.INVESTIGATOR, study=STUDY)
    login(app_client, "inv.zhou")
    page = soup(app_client.get(f"/studies/{STUDY}/subjects/enrol").text)
    banner = page.select_one(".bad[role=alert]").get_text()
    assert "has no ethics approval" in banner and "§11.3.4.2" in banner
    assert page.select_one("input[name=resident_id]") is None


def test_enrol_page_enrols_under_an_approved_waiver_only(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger, STUDY, design="retrospective")
    committee = make_committee(session, ledger)
    approve(session, ledger, study, committee)
    waiver = ethics.request_waiver(session, ledger, actor=SETUP, study_code=STUDY,
                                   data=WaiverIn(ground="retrospective_unreachable",
                                                        justification="records 2010-2015",
                                                        data_deidentified=True))
    make_user(session, ledger, "inv.zhou", Role.INVESTIGATOR, study=STUDY)
    login(app_client, "inv.zhou")
    pending = {"consent_type": "waiver", "waiver_id": waiver.id,
               "given_at": dt.datetime.now(dt.UTC).isoformat()}
    r = enrol_json(app_client, 6, pending)
    err = r.json()["error"]
    assert (r.status_code, err["field"], err["clause"]) == (422, "waiver_id", "§11.3.4.2 b 1)")
    page = soup(app_client.get(f"/studies/{STUDY}/subjects/enrol").text)
    assert page.select("input[type=radio][name=consent]") == []  # nothing to choose yet
    ethics.decide_waiver(session, ledger, actor=SETUP, study_code=STUDY, waiver_id=waiver.id,
                         data=WaiverDecisionIn(committee_id=committee.id,
                                                      decision="approved", reference="W-1",
                                                      decided_on=dt.date.today()))
    page = soup(app_client.get(f"/studies/{STUDY}/subjects/enrol").text)
    [choice] = page.select("input[type=radio][name=consent]")
    assert choice["value"] == f"waiver:{waiver.id}"
    r = app_client.post(f"/studies/{STUDY}/subjects", follow_redirects=False, data={
        "csrf_token": page.find("input", {"name": "csrf_token"})["value"], "site": "S01",
        **synthetic_identity(6), "consent": choice["value"], "scopes": ["study"],
        "given_at": signed_at_local()})
    assert r.status_code == 303, r.text
    rec = session.execute(select(ConsentRecord)).scalar_one()
    assert (rec.consent_type, rec.waiver_id) == ("waiver", waiver.id)
