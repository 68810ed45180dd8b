"""Site scope on every route (§11.3.4.1 a): a grant limited to one site reaches that site's
subjects and nothing of another site — the writes are refused (403, audited, nothing written),
the lists show only the site's rows, and a study-wide setting needs a study-wide grant."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import (
    PASSWORD,
    SETUP,
    consent_to,
    enrol_subject,
    make_active_study,
)
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.state import AppState
from studies.accounts import service as accounts
from studies.consent.models import ConsentRecord, ConsentWithdrawal
from studies.kernel.actor import SYSTEM
from studies.kernel.roles import Role
from studies.subjects.models import CodeIndexEntry, Subject

STUDY = "SC-2026-01"


def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def grant(session: Session, ledger: Ledger, username: str, role: Role,
          site: str | None) -> None:
    accounts.create_user(session, ledger, actor=SYSTEM, username=username,
                         display_name=username, password=PASSWORD,
                         roles=[(role, STUDY, site)], must_change_password=False)


def written(session: Session) -> dict[str, int]:
    return {t.__name__: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Subject, CodeIndexEntry, ConsentRecord, ConsentWithdrawal)}


def denials(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.action == "access.denied")).scalar_one())


@pytest.fixture
def world(session: Session, ledger: Ledger, state: AppState) -> dict[str, Any]:
    """Study SC-2026-01 with sites S01 and S02 and one subject at each."""
    study, sites = make_active_study(session, STUDY, sites=("S01", "S02"), ledger=ledger)
    keys = state.keys.code_index_keys()
    s1 = enrol_subject(session, ledger, keys, actor=SETUP, study=study, site=sites[0], n=1)
    s2 = enrol_subject(session, ledger, keys, actor=SETUP, study=study, site=sites[1], n=2)
    consent = {s.id: session.execute(select(ConsentRecord.id).where(
        ConsentRecord.subject_id == s.id)).scalar_one() for s in (s1, s2)}
    return {"study": study, "S01": s1, "S02": s2, "consent": consent}


def enrol_body(session: Session, study: Any, site: str, n: int) -> dict[str, Any]:
    from factories import synthetic_identity

    return {"site": site, **synthetic_identity(n),
            "consent": consent_to(session, study).model_dump(mode="json")}


def test_an_investigator_of_s02_cannot_enrol_at_s01_but_can_at_s02(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    grant(session, ledger, "inv.s02", Role.INVESTIGATOR, "S02")
    login(app_client, "inv.s02")
    before, refused = written(session), denials(session)
    r = app_client.post(f"/api/v1/studies/{STUDY}/subjects",
                        json=enrol_body(session, world["study"], "S01", 7))
    assert r.status_code == 403, r.text
    assert "S01" in r.json()["error"]["message"]
    assert written(session) == before and denials(session) == refused + 1
    r = app_client.post(f"/api/v1/studies/{STUDY}/subjects",
                        json=enrol_body(session, world["study"], "S02", 8))
    assert r.status_code == 201, r.text
    assert r.json()["site"] == "S02"


def test_an_investigator_of_s02_cannot_withdraw_or_record_consent_of_an_s01_subject(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    grant(session, ledger, "inv.s02", Role.INVESTIGATOR, "S02")
    login(app_client, "inv.s02")
    s1, s2 = world["S01"], world["S02"]
    before = written(session)
    when = dt.datetime.now(dt.UTC).isoformat()
    r = app_client.post(f"/api/v1/studies/{STUDY}/consents/{world['consent'][s1.id]}/withdrawals",
                        json={"withdrawn_at": when, "reason": "asked"})
    assert r.status_code == 403, r.text
    r = app_client.post(f"/api/v1/studies/{STUDY}/subjects/{s1.id}/consents",
                        json=consent_to(session, world["study"]).model_dump(mode="json"))
    assert r.status_code == 403, r.text
    assert written(session) == before
    r = app_client.post(f"/api/v1/studies/{STUDY}/consents/{world['consent'][s2.id]}/withdrawals",
                        json={"withdrawn_at": when, "reason": "asked"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.MONITOR],
                         ids=["investigator", "monitor"])
def test_reads_of_a_site_scoped_user_show_only_their_site(
        role: Role, app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    grant(session, ledger, "u.s02", role, "S02")
    login(app_client, "u.s02")
    s1, s2 = world["S01"], world["S02"]
    listed = app_client.get(f"/api/v1/studies/{STUDY}/subjects").json()
    assert [r["code"] for r in listed] == [s2.code]
    consent = app_client.get(f"/api/v1/studies/{STUDY}/consent").json()
    assert [r["code"] for r in consent["subjects"]] == [s2.code]
    refused = denials(session)
    for url in (f"/api/v1/studies/{STUDY}/subjects/{s1.code}",
                f"/api/v1/studies/{STUDY}/subjects/{s1.id}/consents",
                f"/api/v1/studies/{STUDY}/subjects/{s1.id}/may-use?scope=study"):
        r = app_client.get(url)
        assert r.status_code == 403, (url, r.text)
    assert denials(session) == refused + 3
    for url in (f"/api/v1/studies/{STUDY}/subjects/{s2.code}",
                f"/api/v1/studies/{STUDY}/subjects/{s2.id}/consents",
                f"/api/v1/studies/{STUDY}/subjects/{s2.id}/may-use?scope=study"):
        r = app_client.get(url)
        assert r.status_code == 200, (url, r.text)


def test_a_study_wide_grant_sees_every_site(app_client: TestClient, session: Session,
                                            ledger: Ledger, world: dict[str, Any]) -> None:
    grant(session, ledger, "mon.all", Role.MONITOR, None)
    login(app_client, "mon.all")
    listed = app_client.get(f"/api/v1/studies/{STUDY}/subjects").json()
    assert sorted(r["code"] for r in listed) == sorted([world["S01"].code, world["S02"].code])
    assert app_client.get(f"/api/v1/studies/{STUDY}/subjects/{world['S01'].code}"
                          ).status_code == 200


def test_a_data_manager_of_s02_reaches_only_s02_locks_and_no_study_wide_setting(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    grant(session, ledger, "dm.s02", Role.DATA_MANAGER, "S02")
    login(app_client, "dm.s02")
    base = f"/api/v1/studies/{STUDY}"
    refused = denials(session)
    for body in ({"scope": "study"}, {"scope": "site", "sites": ["S01"]},
                 {"scope": "subjects", "subjects": [world["S01"].code]}):
        r = app_client.post(f"{base}/locks/report", json=body)
        assert r.status_code == 403, (body, r.text)
    r = app_client.post(f"{base}/locks/report", json={"scope": "site", "sites": ["S02"]})
    assert r.status_code == 200, r.text
    r = app_client.post(f"{base}/locks/report",
                        json={"scope": "subjects", "subjects": [world["S02"].code]})
    assert r.status_code == 200, r.text
    r = app_client.put(f"{base}/lock-settings", json={"allow_query_answers": True})
    assert r.status_code == 403, r.text
    assert "whole study" in r.json()["error"]["message"]
    r = app_client.put(f"{base}/entry/settings", json={"allow_incomplete": True})
    assert r.status_code == 403, r.text
    r = app_client.post(f"{base}/events", json={
        "name": "week4", "label_zh": "第4周", "label_en": "Week 4", "form_names": []})
    assert r.status_code == 403, r.text
    r = app_client.post(f"{base}/locks", json={"scope": "study", "override_reason": "x"})
    assert r.status_code == 403, r.text
    assert denials(session) == refused + 7


def test_a_study_wide_data_manager_may_change_the_settings(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    grant(session, ledger, "dm.all", Role.DATA_MANAGER, None)
    login(app_client, "dm.all")
    r = app_client.put(f"/api/v1/studies/{STUDY}/lock-settings",
                       json={"allow_query_answers": True})
    assert r.status_code == 200, r.text
    r = app_client.post(f"/api/v1/studies/{STUDY}/locks/report", json={"scope": "study"})
    assert r.status_code == 200, r.text


def test_the_administrator_grants_a_hospital_scope_that_reaches_its_sites(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    from factories import make_user

    from studies.registry.models import Site

    other = session.execute(select(Site).where(Site.code == "S02")).scalar_one()
    other.hospital = "Another Hospital"  # S02 is in another hospital now
    session.flush()
    make_user(session, ledger, "root", Role.ADMIN)
    grant(session, ledger, "mon.h", Role.MONITOR, None)
    login(app_client, "root")
    r = app_client.post("/api/v1/admin/accounts/grant", json={
        "username": "mon.h", "role": "investigator", "study": STUDY, "scope_level": "hospital"})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "site")
    r = app_client.post("/api/v1/admin/accounts/grant", json={
        "username": "mon.h", "role": "investigator", "study": STUDY, "site": "S01",
        "scope_level": "hospital"})
    assert r.status_code == 200, r.text
    [row] = [a for a in app_client.get("/api/v1/admin/accounts").json()
             if a["username"] == "mon.h"]
    assert f"investigator@{STUDY}/S01 (hospital)" in row["roles"]
    login(app_client, "mon.h")
    me = app_client.get("/api/v1/me").json()
    assert {(g["role"], g["site"]) for g in me["roles"]} == {
        ("monitor", None), ("investigator", "S01")}
    r = app_client.post(f"/api/v1/studies/{STUDY}/subjects",
                        json=enrol_body(session, world["study"], "S02", 9))
    assert r.status_code == 403, r.text  # S02 is not in S01's hospital
