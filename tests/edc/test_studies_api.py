"""The JSON API for studies, ethics, consent and eCRF metadata: status codes, error fields and
clauses, and the ledger entries written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from factories import PASSWORD, make_study, make_subject, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.kernel.roles import Role
from studies.registry import service as registry

CODE = "CARD-2026-02"
DICTIONARY = Path(__file__).resolve().parents[1] / "data" / "redcap_dictionary.csv"
PROTOCOL = {"label": "1.0", "version_date": "2026-01-10", "purpose": "Efficacy",
            "legal_basis": "Consent", "research_content": "RCT", "data_types": "vitals",
            "planned_subjects": 100, "planned_records": 1000, "expected_results": "lower BP",
            "data_sharing_plan": "on request"}
STUDY = {"code": CODE, "title_zh": "心血管研究", "title_en": "Cardio study", "sponsor": "Acme",
         "design": "prospective", "protocol": PROTOCOL,
         "sites": [{"code": "S01", "hospital": "First Hospital", "department": "Cardiology"}]}


def login(client: TestClient, username: str) -> None:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def as_user(client: TestClient, session: Session, ledger: Ledger, username: str,
            *roles: Role) -> None:
    make_user(session, ledger, username, *roles)
    client.cookies.clear()
    login(client, username)


def committee(client: TestClient, members: int = 7) -> str:
    r = client.post("/api/v1/ethics/committees",
                    json={"name": f"EC {members}", "institution": "First Hospital"})
    assert r.status_code == 201, r.text
    cid: str = r.json()["id"]
    for n in range(members):
        r = client.post(f"/api/v1/ethics/committees/{cid}/members", json={
            "name": f"M{n}", "gender": "female" if n % 2 else "male",
            "affiliation": "external" if n == 0 else "internal", "expertise": "medicine"})
        assert r.status_code == 201, r.text
    return cid


def test_study_setup_through_the_api(app_client: TestClient, session: Session,
                                     ledger: Ledger) -> None:
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    make_user(session, ledger, "ec", Role.ETHICS_MEMBER)
    login(app_client, "pi")
    r = app_client.post("/api/v1/studies", json=STUDY)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "draft"
    r = app_client.get(f"/api/v1/studies/{CODE}/readiness")
    assert r.json()["open"] is False and "no ethics approval" in r.json()["reason"]

    app_client.cookies.clear()
    login(app_client, "ec")
    cid = committee(app_client)
    r = app_client.post(f"/api/v1/studies/{CODE}/approvals", json={
        "protocol_version": 1, "committee_id": cid, "reference": "EC-2026-17",
        "decision": "approved", "decided_on": "2026-02-01",
        "expires_on": (dt.date.today() + dt.timedelta(days=365)).isoformat()})
    assert r.status_code == 201, r.text
    approval_id = r.json()["id"]
    assert app_client.get(f"/api/v1/studies/{CODE}").status_code == 403  # no study.read

    app_client.cookies.clear()
    login(app_client, "pi")
    o = app_client.get(f"/api/v1/studies/{CODE}").json()
    assert o["readiness"]["open"] is True and o["study"]["status"] == "active"
    r = app_client.post(f"/api/v1/studies/{CODE}/consent-forms", json={
        "version": "1.0", "consent_type": "informed", "text_zh": "正文", "text_en": "Text",
        "approval_id": approval_id})
    assert r.status_code == 201, r.text
    form_id = r.json()["id"]
    r = app_client.post(f"/api/v1/studies/{CODE}/forms/redcap",
                        json={"csv": DICTIONARY.read_text(encoding="utf-8")})
    assert r.status_code == 201, r.text
    assert [f["form"] for f in r.json()["forms"]] == ["demographics", "vital_signs", "labs"]
    odm = app_client.get(f"/api/v1/studies/{CODE}/odm")
    assert odm.status_code == 200 and odm.headers["content-type"].startswith("application/xml")
    r = app_client.post(f"/api/v1/studies/{CODE}/forms/vital_signs/versions/1/check",
                        json={"values": {"height": "180", "weight": "81", "smoker": "0"},
                              "today": "2026-06-01"})
    assert r.json()["values"]["bmi"] == "25" and r.json()["errors"]["visit_date"] == (
        'required')

    study = registry.get_study(session, CODE)
    subject = make_subject(session, study, "S01-AAAA1")
    r = app_client.post(f"/api/v1/studies/{CODE}/subjects/{subject.id}/consents", json={
        "consent_type": "informed", "form_id": form_id, "scopes": ["study", "cross_border"],
        "given_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()})
    assert r.status_code == 201, r.text
    consent_id = r.json()["id"]
    r = app_client.get(f"/api/v1/studies/{CODE}/subjects/{subject.id}/may-use",
                       params={"scope": "cross_border"})
    assert r.json()["allowed"] is True
    r = app_client.post(f"/api/v1/studies/{CODE}/consents/{consent_id}/withdrawals", json={
        "scopes": ["cross_border"], "withdrawn_at": dt.datetime.now(dt.UTC).isoformat()})
    assert r.status_code == 201, r.text
    r = app_client.get(f"/api/v1/studies/{CODE}/subjects/{subject.id}/may-use",
                       params={"scope": "cross_border"})
    assert r.json()["allowed"] is False and "withdrew" in r.json()["reason"]
    acts = set(session.execute(select(LedgerEntry.action)).scalars())
    assert {"study.create", "ethics.approval", "consent_form.create", "form.import",
            "metadata.export", "consent.record", "consent.withdraw"} <= acts


def test_approval_from_a_small_committee_is_a_422_naming_the_clause(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    as_user(app_client, session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    assert app_client.post("/api/v1/studies", json=STUDY).status_code == 201
    as_user(app_client, session, ledger, "ec", Role.ETHICS_MEMBER)
    cid = committee(app_client, members=6)
    r = app_client.post(f"/api/v1/studies/{CODE}/approvals", json={
        "protocol_version": 1, "committee_id": cid, "reference": "EC-1",
        "decision": "approved", "decided_on": "2026-02-01"})
    assert r.status_code == 422
    err: dict[str, Any] = r.json()["error"]
    assert (err["code"], err["field"], err["clause"]) == ("rule_violation", "committee_id",
                                                          "§11.3.2 e")


def test_bad_input_is_a_4xx_naming_the_field(app_client: TestClient, session: Session,
                                             ledger: Ledger) -> None:
    as_user(app_client, session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    r = app_client.post("/api/v1/studies", json={**STUDY, "design": "sideways"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "design")
    r = app_client.post("/api/v1/studies", json={**STUDY, "protocol": {**PROTOCOL,
                                                                       "planned_subjects": 0}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "protocol.planned_subjects"
    r = app_client.post("/api/v1/studies", json={**STUDY, "title_en": "x" * 501})
    assert r.status_code == 422 and r.json()["error"]["field"] == "title_en"
    r = app_client.post(f"/api/v1/studies/{CODE}/forms/redcap", json={"csv": "nonsense\n"})
    assert r.status_code == 422 and "line 1" in r.json()["error"]["message"]
    r = app_client.get("/api/v1/studies/NOPE-1")
    assert r.status_code == 404


def test_sponsor_cannot_set_up_or_read_consent(app_client: TestClient, session: Session,
                                               ledger: Ledger) -> None:
    as_user(app_client, session, ledger, "sp", Role.SPONSOR)
    assert app_client.post("/api/v1/studies", json=STUDY).status_code == 403
    assert app_client.get(f"/api/v1/studies/{CODE}/consent").status_code == 403
    denied = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "access.denied")).scalars().all()
    assert len(denied) == 2


def test_may_use_needs_a_time_zone_and_a_known_scope(app_client: TestClient, session: Session,
                                                     ledger: Ledger) -> None:
    study = make_study(session, ledger, CODE)
    subject = make_subject(session, study, "S01-TZ001")
    as_user(app_client, session, ledger, "inv", Role.INVESTIGATOR)
    url = f"/api/v1/studies/{CODE}/subjects/{subject.id}/may-use"
    r = app_client.get(url, params={"scope": "study", "at": "2026-05-01T10:00:00"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "at")
    r = app_client.get(url, params={"scope": "everything"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "scope")
    r = app_client.get(url, params={"scope": "study"})
    assert r.json() == {"subject": "S01-TZ001", "scope": "study", "at": r.json()["at"],
                        "allowed": False, "reason": "the subject has no consent or approved "
                        "waiver on record"}
