"""Pages: the set-up wizard, the ethics committee's desk and consent capture."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bs4 import BeautifulSoup
from factories import (
    SETUP,
    approve,
    make_committee,
    make_study,
    make_subject,
    make_user,
)
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.service import Ledger
from studies import guards
from studies.consent import service as consent
from studies.consent.models import SCOPE_LABELS
from studies.consent.schemas import ConsentFormIn
from studies.kernel.roles import Role
from studies.registry import service as registry

DICTIONARY = Path(__file__).resolve().parents[1] / "data" / "redcap_dictionary.csv"


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def csrf(client: TestClient, url: str) -> str:
    tag = soup(client.get(url).text).find("input", {"name": "csrf_token"})
    assert tag is not None
    return str(tag["value"])


def test_the_wizard_registers_a_study_and_shows_why_entry_is_stopped(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    login(app_client, "pi")
    token = csrf(app_client, "/studies/new")
    r = app_client.post("/studies/new", follow_redirects=False, data={
        "csrf_token": token, "code": "WIZ-1", "title_zh": "向导研究", "title_en": "Wizard study",
        "sponsor": "Acme", "design": "retrospective", "real_world_data": "on",
        "label": "1.0", "version_date": "2026-01-02", "purpose": "p", "legal_basis": "l",
        "research_content": "r", "data_types": "d", "planned_subjects": "10",
        "planned_records": "100", "expected_results": "e", "data_sharing_plan": "s",
        "site_code": "S01", "site_hospital": "First Hospital"})
    assert r.status_code == 303 and r.headers["location"] == "/studies/WIZ-1"
    page = soup(app_client.get("/studies/WIZ-1").text)
    alert = page.select_one("p.bad[role=alert]")
    assert alert is not None and "has no ethics approval" in alert.get_text()
    assert [li.get_text() for li in page.select("ol.wizard li")][:2] == [
        "✔ Study", "✔ Sites"]
    study = registry.get_study(session, "WIZ-1")
    assert (study.design, study.real_world_data) == ("retrospective", True)


def test_wizard_form_errors_name_the_field(app_client: TestClient, session: Session,
                                           ledger: Ledger) -> None:
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    login(app_client, "pi")
    token = csrf(app_client, "/studies/new")
    r = app_client.post("/studies/new", data={"csrf_token": token, "code": "WIZ-2"})
    assert r.status_code == 422
    page = soup(r.text)
    # every missing field at once, each beside its field and named by its label on top
    assert page.select_one("#field-site_hospital .field-error").get_text() == 'required'
    assert page.select_one("#field-title_zh .field-error").get_text() == 'required'
    summary = page.select_one(".form-errors").get_text(" ")
    assert 'Hospital' in summary and 'Title (Chinese)' in summary
    assert page.select_one("input[name=code]")["value"] == "WIZ-2"


def test_importing_a_dictionary_from_the_study_page(app_client: TestClient, session: Session,
                                                    ledger: Ledger) -> None:
    make_study(session, ledger, "PAGE-1")
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study="PAGE-1")
    login(app_client, "dm")
    token = csrf(app_client, "/studies/PAGE-1")
    r = app_client.post("/studies/PAGE-1/forms/redcap", data={"csrf_token": token},
                        files={"file": ("dict.csv", DICTIONARY.read_bytes(), "text/csv")})
    assert r.status_code == 200  # followed the redirect
    assert 'imported' in soup(r.text).select_one(
        ".flash").get_text()
    page = soup(app_client.get("/studies/PAGE-1/forms/demographics/versions/1").text)
    proposed = [tr.select_one("code").get_text() for tr in page.select("tr.proposed")]
    assert "dob" in proposed and "postcode" in proposed
    r = app_client.post("/studies/PAGE-1/forms/demographics/versions/1/items/dob",
                        data={"csrf_token": token, "classification": "quasi_identifier",
                              "data_category": "personal_attributes", "level": "3"})
    page = soup(r.text)
    assert "dob" not in [tr.select_one("code").get_text() for tr in page.select("tr.proposed")]


def test_a_bad_upload_is_refused_with_its_line_and_nothing_imported(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, "PAGE-2")
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study="PAGE-2")
    login(app_client, "dm")
    token = csrf(app_client, "/studies/PAGE-2")
    r = app_client.post("/studies/PAGE-2/forms/odm", data={"csrf_token": token},
                        files={"file": ("m.xml", b"<ODM><unclosed>", "application/xml")})
    assert r.status_code == 422
    assert "line 1: not well-formed XML" in soup(r.text).select_one("p.error").get_text()
    page = soup(app_client.get("/studies/PAGE-2").text)
    assert page.select("main table")[-1].select("tbody tr") == []


def test_ethics_desk_shows_composition_problems_and_records_a_decision(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, "ETH-1")
    small = make_committee(session, ledger, members=5, name="Small EC")
    good = make_committee(session, ledger, name="Full EC")
    make_user(session, ledger, "ec", Role.ETHICS_MEMBER)
    login(app_client, "ec")
    page = soup(app_client.get("/ethics").text)
    alerts = [p.get_text() for p in page.select("p.bad[role=alert]")]
    assert any("5 members, at least 7" in a for a in alerts)
    token = csrf(app_client, "/ethics")
    data = {"csrf_token": token, "protocol_version": "1", "committee_id": small.id,
            "decision": "approved", "reference": "EC-9", "decided_on": "2026-02-01"}
    r = app_client.post("/ethics/studies/ETH-1/approvals", data=data)
    assert r.status_code == 422
    assert "GB/T 39725-2020 §11.3.2 e" in soup(r.text).get_text()
    r = app_client.post("/ethics/studies/ETH-1/approvals", data={**data,
                                                                 "committee_id": good.id})
    assert r.status_code == 200
    assert soup(r.text).select_one(".flash").get_text() == 'decision recorded'
    assert registry.get_study(session, "ETH-1").status == "active"


def test_consent_capture_shows_the_form_text_and_records_consent(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger, "CON-1")
    approval = approve(session, ledger, study, make_committee(session, ledger))
    consent.add_consent_form(session, ledger, actor=SETUP, study_code="CON-1",
                             data=ConsentFormIn(
                                 version="1.0", consent_type="informed",
                                 text_zh="您的资料将保密。",
                                 text_en="Your data is kept confidential.",
                                 approval_id=approval.id))
    subject = make_subject(session, study, "S01-PAGE1")
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study="CON-1")
    login(app_client, "inv")
    url = f"/studies/CON-1/subjects/{subject.id}/consent"
    page = soup(app_client.get(url).text)
    assert [d.get_text() for d in page.select("div.consent-text")] == [
        "您的资料将保密。", "Your data is kept confidential."]
    assert "No data entry" in page.select_one("main p.bad").get_text()
    token = csrf(app_client, url)
    when = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(minutes=5))
    r = app_client.post(url, data={"csrf_token": token, "form_id": page.select_one(
        "input[name=form_id]")["value"], "consent_type": "informed",
        "scopes": ["study", "contact"], "given_at": when.strftime("%Y-%m-%dT%H:%M")})
    assert r.status_code == 200
    page = soup(r.text)
    assert page.select_one("main p.ok").get_text() == "✔ Data entry allowed"
    assert guards.may_use(session, subject_id=subject.id, scope="contact",
                           at=dt.datetime.now(dt.UTC))
    listing = soup(app_client.get("/studies/CON-1/consent").text)
    assert [td.get_text() for td in listing.select("tbody tr td")][:3] == [
        "S01-PAGE1", f"{SCOPE_LABELS['study']}, {SCOPE_LABELS['contact']}", "✔"]


def test_investigators_cannot_open_the_ethics_desk(app_client: TestClient, session: Session,
                                                   ledger: Ledger) -> None:
    make_user(session, ledger, "inv", Role.INVESTIGATOR)
    login(app_client, "inv")
    assert app_client.get("/ethics").status_code == 403
