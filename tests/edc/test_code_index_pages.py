"""Enrolment and code-index pages and API: identity typed once then shown only as the code,
custodian-only lookups with reasons and history, and the role matrix (every other role 403,
audited)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import nacl.utils
import pytest
from bs4 import BeautifulSoup
from factories import PASSWORD, consent_to, make_active_study, make_user, synthetic_identity
from fastapi.testclient import TestClient
from in_test_session import use_test_session
from pages_util import ENGLISH
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.app import create_app
from edc.policy import iter_routes
from edc.state import AppState
from studies.kernel.roles import Role
from studies.registry.models import Study

STUDY = "CI-2026-01"


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def login(client: TestClient, username: str) -> None:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def csrf(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return str(soup(page.text).find("input", {"name": "csrf_token"})["value"])


def signed_at_local() -> str:
    """A minute ago, as a datetime-local field in China Standard Time."""
    cst = dt.timezone(dt.timedelta(hours=8))
    return (dt.datetime.now(cst) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")


def entries(session: Session, action: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(LedgerEntry.action == action)
                                .order_by(LedgerEntry.seq)).scalars())


@pytest.fixture
def study(session: Session, ledger: Ledger) -> str:
    make_active_study(session, STUDY, sites=("S01", "S02"), ledger=ledger)
    make_user(session, ledger, "inv.wang", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "cust.li", Role.CUSTODIAN)
    return STUDY


@pytest.fixture
def consent(session: Session, study: str) -> dict:
    """A valid consent (to consent form 1.0) as the enrolment API takes it."""
    return consent_to(session, study_obj(session)).model_dump(mode="json")


def study_obj(session: Session) -> Study:
    return session.execute(select(Study).where(Study.code == STUDY)).scalar_one()


def api_enrol(client: TestClient, n: int, consent: dict, **over: str) -> dict:
    r = client.post(f"/api/v1/studies/{STUDY}/subjects",
                    json={"site": "S01", "consent": consent, **synthetic_identity(n, **over)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_investigator_enrols_on_the_page_and_then_sees_only_the_code(
        app_client: TestClient, session: Session, study: str) -> None:
    login(app_client, "inv.wang")
    form = soup(app_client.get(f"/studies/{study}/subjects/enrol").text)
    token = form.find("input", {"name": "csrf_token"})["value"]
    [signed] = form.select("input[type=radio][name=consent]")
    ident = synthetic_identity(21)
    r = app_client.post(f"/studies/{study}/subjects",
                        data={"csrf_token": token, "site": "S02", **ident,
                              "consent": signed["value"], "scopes": ["study"],
                              "given_at": signed_at_local()},
                        follow_redirects=False)
    assert r.status_code == 303
    code = r.headers["location"].rsplit("/", 1)[1]
    assert code.startswith("S02-")
    detail = soup(app_client.get(r.headers["location"]).text)
    assert detail.select_one(".subject-code").get_text() == code
    flash = detail.select_one(".flash").get_text()
    assert flash == f"enrolled as {code}"
    listing = soup(app_client.get(f"/studies/{study}/subjects").text)
    assert [a.get_text() for a in listing.select("table.subjects a")] == [code]
    for page in (detail, listing):
        text = page.get_text()
        assert all(v not in text for v in ident.values())


def test_enrol_form_errors_name_the_field_and_write_nothing(
        app_client: TestClient, session: Session, study: str, consent: dict) -> None:
    login(app_client, "inv.wang")
    bad = synthetic_identity(22, resident_id="110105196201010010")  # wrong check digit
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"site": "S01", "consent": consent, **bad})
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["field"], err["code"]) == ("resident_id", "invalid_input")
    assert "check digit" in err["message"] and bad["resident_id"] not in err["message"]
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"consent": consent, "site": "S01",
                              **synthetic_identity(22, phone="12345")})
    assert r.json()["error"]["field"] == "phone"
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"site": "S09", "consent": consent, **synthetic_identity(22)})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "site")
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"consent": consent, "site": "S01",
                              **synthetic_identity(22, name="x" * 101)})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "name")
    assert app_client.get(f"/api/v1/studies/{study}/subjects").json() == []
    assert entries(session, "subject.enrol") == []


def test_duplicate_enrolment_is_409_without_naming_the_subject_to_an_investigator(
        app_client: TestClient, session: Session, study: str, consent: dict) -> None:
    login(app_client, "inv.wang")
    first = api_enrol(app_client, 23, consent)
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"consent": consent, "site": "S02",
                              **synthetic_identity(23, name="另一个名字")})
    assert r.status_code == 409
    assert r.json()["error"]["message"] == 'already enrolled in this study'
    assert first["code"] not in r.text
    [refusal] = [e for e in entries(session, "subject.enrol") if e.outcome == "failure"]
    assert refusal.actor == "inv.wang"


def test_custodian_looks_up_with_reason_and_sees_the_history(
        app_client: TestClient, session: Session, study: str, consent: dict) -> None:
    login(app_client, "inv.wang")
    code = api_enrol(app_client, 24, consent)["code"]
    app_client.cookies.clear()
    login(app_client, "cust.li")
    token = csrf(app_client, "/code-index")
    r = app_client.post("/code-index/identity", data={"csrf_token": token, "code": code,
                                                      "reason": "adverse event follow-up"})
    shown = {dt.get_text(): dd.get_text() for dt, dd in
             zip(soup(r.text).select("dl.identity dt"), soup(r.text).select("dl.identity dd"),
                 strict=True)}
    assert shown['Name'] == synthetic_identity(24)["name"]
    assert shown['Resident ID number'] == synthetic_identity(24)["resident_id"]
    r = app_client.post("/code-index/code", data={
        "csrf_token": token, "resident_id": synthetic_identity(24)["resident_id"],
        "reason": "patient at the desk"})
    assert [td.get_text() for td in soup(r.text).select("table.matches td")] == [STUDY, code]
    r = app_client.post("/code-index/identity", data={"csrf_token": token, "code": "S01-22222Z",
                                                      "reason": "mistyped code"})
    assert soup(r.text).select_one(".result").get_text().startswith("No subject has this code")
    r = app_client.post("/code-index/identity", data={"csrf_token": token, "code": code,
                                                      "reason": ""})
    assert r.status_code == 422
    assert "reason" in soup(r.text).select_one("main").get_text()
    hist = soup(app_client.get("/code-index/history").text)
    rows = [[td.get_text() for td in tr.select("td")]
            for tr in hist.select("table.history tbody tr")]
    assert [(r[2], r[5], r[6]) for r in rows] == [
        ("cust.li", "mistyped code", "not_found"), ("cust.li", "patient at the desk", "found"),
        ("cust.li", "adverse event follow-up", "found")]
    api = app_client.get("/api/v1/code-index/lookups").json()
    assert [x["result"] for x in api] == ["not_found", "found", "found"]


def test_api_lookups_and_subject_access_export(
        app_client: TestClient, session: Session, study: str, consent: dict) -> None:
    login(app_client, "inv.wang")
    code = api_enrol(app_client, 25, consent)["code"]
    app_client.cookies.clear()
    login(app_client, "cust.li")
    r = app_client.post("/api/v1/code-index/lookup/identity",
                        json={"code": code, "reason": "data query on dosing"})
    assert r.json()["identity"]["phone"] == synthetic_identity(25)["phone"]
    r = app_client.post("/api/v1/code-index/lookup/code",
                        json={"resident_id": synthetic_identity(99)["resident_id"],
                              "reason": "is this person enrolled"})
    assert r.json() == {"found": False, "matches": []}
    r = app_client.post("/api/v1/code-index/export",
                        json={"code": code, "reason": "subject's written request"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith(f'attachment; filename="subject-{code}-')
    assert json.loads(r.content)["identity"]["name"] == synthetic_identity(25)["name"]
    token = csrf(app_client, "/code-index")
    r = app_client.post("/code-index/export", data={"csrf_token": token, "code": code,
                                                    "format": "text", "reason": "copy for mail"})
    assert r.headers["content-type"].startswith("text/plain")
    assert f"Subject code: {code}" in r.text.splitlines()
    assert [e.reason for e in entries(session, "subject.export")] == [
        "subject's written request", "copy for mail"]


CODE_INDEX_ENDPOINTS = [
    ("GET", "/code-index", None),
    ("POST", "/code-index/identity", {"code": "S01-22222Z", "reason": "curious"}),
    ("POST", "/code-index/code", {"resident_id": "11010519491231002X", "reason": "curious"}),
    ("GET", "/code-index/history", None),
    ("POST", "/code-index/export", {"code": "S01-22222Z", "reason": "curious"}),
    ("POST", "/api/v1/code-index/lookup/identity", {"code": "S01-22222Z", "reason": "curious"}),
    ("POST", "/api/v1/code-index/lookup/code",
     {"resident_id": "11010519491231002X", "reason": "curious"}),
    ("GET", "/api/v1/code-index/lookups", None),
    ("POST", "/api/v1/code-index/export", {"code": "S01-22222Z", "reason": "curious"}),
    ("POST", "/code-index/disclosures", {"code": "S01-22222Z"}),
    ("POST", "/code-index/requests", {"code": "S01-22222Z", "kind": "correction",
                                      "text": "wrong", "reason": "curious"}),
    ("POST", "/api/v1/code-index/requests", {"code": "S01-22222Z", "kind": "correction",
                                             "text": "wrong", "reason": "curious"}),
    ("GET", "/api/v1/code-index/subjects/{code}/disclosures", None),
]


def test_code_index_endpoints_are_the_ones_the_app_serves(app_client: TestClient) -> None:
    routes = iter_routes(app_client.app.routes)  # type: ignore[attr-defined]
    served = {(m, r.path) for r in routes for m in getattr(r, "methods", ())
              if r.path.startswith(("/code-index", "/api/v1/code-index"))}
    assert served == {(m, p) for m, p, _ in CODE_INDEX_ENDPOINTS}


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.CUSTODIAN])
def test_every_non_custodian_role_is_refused_on_every_code_index_endpoint(
        app_client: TestClient, session: Session, ledger: Ledger, study: str,
        role: Role) -> None:
    for scope in (None, STUDY):
        username = f"r.{role.value}.{'all' if scope is None else 'study'}"
        make_user(session, ledger, username, role, study=scope)
        app_client.cookies.clear()
        login(app_client, username)
        token = csrf(app_client, "/")
        for method, url, payload in CODE_INDEX_ENDPOINTS:
            if method == "GET":
                r = app_client.get(url)
            elif url.startswith("/api/"):
                r = app_client.post(url, json=payload)
            else:
                r = app_client.post(url, data={"csrf_token": token, **(payload or {})})
            assert r.status_code == 403, (role, url, r.text)
            if url.startswith("/api/"):
                assert r.json()["error"]["code"] == "permission_denied"
        denied = [e for e in entries(session, "access.denied") if e.actor == username]
        assert [e.entity_id for e in denied] == [f"{m} {u}" for m, u, _ in CODE_INDEX_ENDPOINTS]
    assert entries(session, "code_index.lookup_identity") == []


def test_a_wrong_key_directory_answers_423_and_exposes_nothing(
        app_client: TestClient, session: Session, ledger: Ledger, state: AppState,
        study: str, consent: dict) -> None:
    login(app_client, "inv.wang")
    code = api_enrol(app_client, 26, consent)["code"]
    app = create_app(dataclasses.replace(
        state, keys=dataclasses.replace(state.keys, code_index_key=nacl.utils.random(32))))
    use_test_session(app, session)
    with TestClient(app, base_url="http://testserver", headers=ENGLISH) as wrong:
        login(wrong, "cust.li")
        r = wrong.post("/api/v1/code-index/lookup/identity",
                       json={"code": code, "reason": "adverse event follow-up"})
        assert r.status_code == 423
        assert r.json()["error"]["code"] == "code_index_key_unavailable"
        assert synthetic_identity(26)["name"] not in r.text
        wrong.cookies.clear()
        login(wrong, "inv.wang")
        r = wrong.post(f"/api/v1/studies/{study}/subjects",
                       json={"site": "S01", "consent": consent, **synthetic_identity(27)})
        assert r.status_code == 423
    assert entries(session, "code_index.lookup_identity") == []
    assert len(entries(session, "subject.enrol")) == 1


def test_hostile_input_is_a_field_error_never_a_server_error(
        app_client: TestClient, session: Session, study: str, consent: dict) -> None:
    login(app_client, "inv.wang")
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"site": "S0\x001", "consent": consent, **synthetic_identity(28)})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "site")
    r = app_client.post(f"/api/v1/studies/{study}/subjects",
                        json={"consent": consent, "site": "S01",
                              **synthetic_identity(28, address="<script>\x00")})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "address")
    assert app_client.get(f"/api/v1/studies/{study}/subjects/%00").status_code == 422
    assert app_client.post(f"/api/v1/studies/{study}/subjects", content=b"\xff\xfe",
                           headers={"Content-Type": "application/json"}).status_code == 422
    app_client.cookies.clear()
    login(app_client, "cust.li")
    for code, reason, field in [("'; DROP TABLE subject;--", "adverse event", "code"),
                                ("S01-22222Z", "adverse\x00event", "reason"),
                                ("S01-22222Z", "abc", "reason")]:
        r = app_client.post("/api/v1/code-index/lookup/identity",
                            json={"code": code, "reason": reason})
        assert (r.status_code, r.json()["error"]["field"]) == (422, field)
    r = app_client.post("/api/v1/code-index/lookup/code",
                        json={"resident_id": "1101\x00", "reason": "adverse event"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "resident_id")
    assert entries(session, "code_index.lookup_identity") == []
