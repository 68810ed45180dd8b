"""Errors at the field, input kept: a refused form comes back (422) with each message beside
its field, a summary naming each field by its label, what was typed still in the fields, and
nothing written — study registration, enrolment, locking and query answers."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import (
    VITALS,
    make_active_study,
    make_entry_study,
    make_lock_team,
    make_user,
    synthetic_identity,
)
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.entry import monitoring
from studies.entry import service as entry
from studies.entry.schemas import QueryOpenIn, SaveIn
from studies.kernel.roles import Role
from studies.locks.models import DataLock
from studies.registry.models import Study
from studies.subjects.models import Subject


def token(page: BeautifulSoup) -> str:
    return str(page.find("input", {"name": "csrf_token"})["value"])


def count(session: Session, table: Any) -> int:
    return session.execute(select(func.count()).select_from(table)).scalar_one()


def summary(page: BeautifulSoup) -> str:
    box = page.select_one("main .form-errors[role=alert]")
    assert box is not None, "no error summary"
    return box.get_text(" ")


def test_enrolment_reports_every_identity_error_beside_its_field_and_keeps_the_input(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_active_study(session, "FE-2026-01", sites=("S01", "S02"), ledger=ledger)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study="FE-2026-01")
    login(app_client, "inv")
    url = "/studies/FE-2026-01/subjects"
    page = soup(app_client.get(f"{url}/enrol").text)
    person = synthetic_identity(7)
    rid = person["resident_id"]
    wrong = rid[:17] + ("0" if rid[17] != "0" else "1")  # wrong check digit
    consent = page.select_one("input[name=consent]")["value"]
    before = (count(session, Subject), count(session, LedgerEntry))
    r = app_client.post(url, follow_redirects=False, data={
        "csrf_token": token(page), "site": "S02", **person, "resident_id": wrong,
        "phone": "12345", "consent": consent, "scopes": ["study"],
        "given_at": "2026-05-01T09:30"})
    assert r.status_code == 422
    doc = soup(r.text)
    assert "check digit" in doc.select_one("#field-resident_id .field-error").get_text()
    assert "11" in doc.select_one("#field-phone .field-error").get_text()
    text = summary(doc)
    assert 'Resident ID number' in text and 'Mobile phone' in text
    assert doc.select_one("input[name=name]")["value"] == person["name"]
    assert doc.select_one("input[name=resident_id]")["value"] == wrong
    assert doc.select_one("input[name=address]")["value"] == person["address"]
    assert doc.select_one("select[name=site] option[selected]")["value"] == "S02"
    assert doc.select_one("input[name=consent]").has_attr("checked")
    assert doc.select_one("header nav.menu") is not None  # a page with the menu, not bare
    assert (count(session, Subject), count(session, LedgerEntry)) == before


def test_study_registration_shows_each_error_at_its_labelled_field(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    login(app_client, "pi")
    page = soup(app_client.get("/studies/new").text)
    r = app_client.post("/studies/new", follow_redirects=False, data={
        "csrf_token": token(page), "code": "REG-2026-01", "title_zh": "研究",
        "title_en": "A study", "sponsor": "Sponsor Ltd", "design": "retrospective",
        "label": "1.0", "version_date": "2026-01-05", "purpose": "p", "legal_basis": "l",
        "research_content": "r", "data_types": "d", "planned_subjects": "many",
        "planned_records": "10", "expected_results": "e", "data_sharing_plan": "s",
        "site_code": "S01", "site_hospital": "", "blinded": "on"})
    assert r.status_code == 422
    doc = soup(r.text)
    assert doc.select_one("#field-site_hospital .field-error").get_text() == 'required'
    assert 'must be a whole number' in doc.select_one(
        "#field-planned_subjects .field-error").get_text()
    text = summary(doc)
    assert 'Hospital' in text and 'Planned subjects' in text
    assert "site_hospital" not in text  # the label, not the internal name
    assert doc.select_one("input[name=code]")["value"] == "REG-2026-01"
    assert doc.select_one("textarea[name=purpose]").get_text() == "p"
    assert doc.select_one("input[name=blinded]").has_attr("checked")
    assert doc.select_one("select[name=design] option[selected]")["value"] == "retrospective"
    assert session.execute(select(Study).where(Study.code == "REG-2026-01")).first() is None


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Any]:
    """The entry study's team, vital signs saved for S01-ENT01 (not yet verified)."""
    make_entry_study(session, ledger)
    team = make_lock_team(session, ledger, "ENT-2026-01")
    entry.save_form(session, ledger, actor=team["inv"], study_code="ENT-2026-01",
                    subject_code="S01-ENT01", event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    return team


def test_locking_with_open_items_and_no_reason_shows_the_error_at_the_reason(
        app_client: TestClient, session: Session, team: dict[str, Any]) -> None:
    login(app_client, "dm")
    report = soup(app_client.get("/studies/ENT-2026-01/locks/report",
                                 params={"scope": "subjects", "subjects": "S01-ENT01"}).text)
    r = app_client.post("/studies/ENT-2026-01/locks", follow_redirects=False, data={
        "csrf_token": token(report), "scope": "subjects", "subjects": "S01-ENT01",
        "override_reason": ""})
    assert r.status_code == 422
    doc = soup(r.text)
    assert doc.select_one("#field-override_reason .field-error") is not None
    assert "Override reason" in summary(doc)
    assert doc.select_one("select[name=scope] option[selected]")["value"] == "subjects"
    assert doc.select_one("textarea[name=subjects]").get_text() == "S01-ENT01"
    assert count(session, DataLock) == 0


def test_a_refused_query_answer_keeps_the_answer_and_says_why_in_its_form(
        app_client: TestClient, session: Session, ledger: Ledger,
        team: dict[str, Any]) -> None:
    q = monitoring.open_query(session, ledger, actor=team["mon"], study_code="ENT-2026-01",
                              data=QueryOpenIn(subject="S01-ENT01", event="baseline",
                                               form="vital_signs", item="sbp",
                                               text="Source shows 128"))
    login(app_client, "inv")
    page = soup(app_client.get(
        "/studies/ENT-2026-01/entry/S01-ENT01/baseline/vital_signs").text)
    before = count(session, LedgerEntry)
    r = app_client.post(f"/studies/ENT-2026-01/queries/{q.id}/answer", follow_redirects=False,
                        data={"csrf_token": token(page), "text": "Corrected from source",
                              "change_value": "1", "value": "not a number"})
    assert r.status_code == 422
    doc = soup(r.text)
    form = doc.select_one(f"form[action$='/queries/{q.id}/answer']")
    assert form.select_one(".field-error") is not None
    assert form.select_one("textarea[name=text]").get_text() == "Corrected from source"
    assert form.select_one("input[name=value]")["value"] == "not a number"
    assert 'Query answer: sbp' in summary(doc)
    assert count(session, LedgerEntry) == before
