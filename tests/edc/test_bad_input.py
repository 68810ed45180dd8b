"""Inputs that once answered 500 (the rule: none may): a version number beyond the database's
integers, second-factor codes in non-ASCII digits, a NUL character in any text (refused the
same way on SQLite and PostgreSQL), each a 4xx naming the field, with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import app_with
from factories import PASSWORD, VITALS, enrol_totp, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from test_entry_api import FORM, STUDY
from test_entry_api import study as study_fixture
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.settings import Settings
from edc.state import AppState
from studies.accounts.models import User
from studies.entry.models import DataQuery, ValueVersion
from studies.kernel.roles import Role

study = study_fixture  # the entry study and its investigator and monitor (a fixture)


def saved_then_monitor(client: TestClient) -> None:
    """The investigator saves the vital signs; then the monitor logs in."""
    login(client, "inv")
    client.put(FORM, json={"base_version": 0, "values": VITALS})
    login(client, "mon")


def open_query(client: TestClient, text: str = "check") -> Any:
    """The logged-in monitor opens a query on the saved vital signs' sbp."""
    return client.post(f"/api/v1/studies/{STUDY}/queries", json={
        "subject": "S01-ENT01", "event": "baseline", "form": "vital_signs", "item": "sbp",
        "text": text})


def count(session: Session, table: type) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("version", [2**31, 2**63, 2**64, 10**30])
def test_a_save_with_a_huge_base_version_is_422_naming_it(
        app_client: TestClient, session: Session, study: None, version: int) -> None:
    login(app_client, "inv")
    r = app_client.put(FORM, json={"base_version": version, "values": VITALS})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "base_version"
    assert count(session, ValueVersion) == 0


def test_the_entry_page_with_a_huge_base_version_answers_a_conflict_not_500(
        app_client: TestClient, session: Session, study: None) -> None:
    login(app_client, "inv")
    app_client.put(FORM, json={"base_version": 0, "values": VITALS})
    before = count(session, ValueVersion)
    token = app_client.cookies["edc_csrf"]
    r = app_client.post(f"/studies/{STUDY}/entry/S01-ENT01/baseline/vital_signs",
                        data={"csrf_token": token, "base_version": str(2**63),
                              **{**VITALS, "sbp": "150"}})
    assert r.status_code == 409, r.text
    assert count(session, ValueVersion) == before


def test_a_query_answer_with_a_huge_base_version_is_422(
        app_client: TestClient, session: Session, study: None) -> None:
    saved_then_monitor(app_client)
    qid = open_query(app_client).json()["id"]
    login(app_client, "inv")
    r = app_client.post(f"/api/v1/studies/{STUDY}/queries/{qid}/answer", json={
        "text": "fixed", "change_value": True, "value": "125", "base_version": 2**63})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "base_version")


@pytest.fixture
def strict(settings: Settings, engine: Engine, keys: keyring.Keyring, ledger: Ledger,
           session: Session) -> Iterator[tuple[TestClient, AppState]]:
    """The second factor enforced; the client outside the hospital network."""
    with app_with(settings, engine, keys, ledger, session, client=("203.0.113.9", 5000),
                  second_factor_enforced=True, hospital_networks="10.0.0.0/8") as both:
        yield both


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "۱۲۳۴۵۶", "１２３４５６", "²²²²²²", "12345\x00"])
def test_a_login_code_in_non_ascii_digits_is_refused_not_500(
        strict: tuple[TestClient, AppState], session: Session, ledger: Ledger,
        code: str) -> None:
    client, state = strict
    user = make_user(session, ledger, "mon.li", Role.MONITOR, study=STUDY)
    enrol_totp(session, user, state.auth)
    r = client.post("/api/v1/auth/login",
                    json={"username": "mon.li", "password": PASSWORD, "totp": code})
    assert r.status_code in (401, 422), r.text
    assert "edc_session" not in client.cookies


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６"])
def test_a_second_factor_enrolment_code_in_non_ascii_digits_is_422(
        app_client: TestClient, session: Session, ledger: Ledger, code: str) -> None:
    make_user(session, ledger, "mon.li", Role.MONITOR, study=STUDY)
    app_client.post("/api/v1/auth/login", json={"username": "mon.li", "password": PASSWORD})
    assert app_client.post("/api/v1/account/second-factor/start", json={}).status_code == 200
    r = app_client.post("/api/v1/account/second-factor/confirm", json={"code": code})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "code"), r.text
    assert session.execute(select(User.totp_enabled).where(User.username == "mon.li")
                           ).scalar_one() is False


def test_a_nul_in_a_login_username_is_422_and_writes_nothing(
        app_client: TestClient, session: Session) -> None:
    before = count(session, LedgerEntry)
    r = app_client.post("/api/v1/auth/login", json={"username": "li\x00na", "password": "x"})
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["error"]["message"]
    assert count(session, LedgerEntry) == before


def test_a_nul_in_a_query_text_or_answer_is_422_naming_the_field(
        app_client: TestClient, session: Session, study: None) -> None:
    saved_then_monitor(app_client)
    before = (count(session, DataQuery), count(session, LedgerEntry))
    r = open_query(app_client, "check\x00this")
    assert r.status_code == 422, r.text
    assert "text" in r.json()["error"]["message"]
    assert (count(session, DataQuery), count(session, LedgerEntry)) == before
    qid = open_query(app_client).json()["id"]
    login(app_client, "inv")
    before = (count(session, ValueVersion), count(session, LedgerEntry))
    r = app_client.post(f"/api/v1/studies/{STUDY}/queries/{qid}/answer",
                        json={"text": "fixed\x00", "change_value": False})
    assert r.status_code == 422, r.text
    assert (count(session, ValueVersion), count(session, LedgerEntry)) == before


def test_a_nul_in_an_audit_filter_or_an_address_is_422(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "aud", Role.AUDITOR)
    login(app_client, "aud")
    for params in ({"user": "a\x00b"}, {"subject": "S01\x00"}):
        r = app_client.get("/api/v1/audit/entries", params=params)
        assert r.status_code == 422, (params, r.text)
    r = app_client.get("/api/v1/studies/A%00B/subjects")
    assert r.status_code == 422, r.text
    r = app_client.get("/audit/entries?user=%00")
    assert r.status_code == 422, r.text


def test_an_audit_export_of_a_study_not_held_is_refused_before_it_streams(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "aud", Role.AUDITOR, study="S1")
    login(app_client, "aud")
    before = count(session, LedgerEntry)
    r = app_client.get("/api/v1/audit/export", params={"study": "S2", "format": "csv"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "permission_denied"
    assert [e.action for e in session.execute(select(LedgerEntry).where(
        LedgerEntry.seq > before)).scalars()] == ["access.denied"]
