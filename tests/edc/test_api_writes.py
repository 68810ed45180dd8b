"""The /api/v1 write routes no other test calls, each through the real app as the role that
may use it, with valid input: the status, the JSON body the user sees and one effect (so that
each route's declared response model is proven to fit what it answers)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyotp
from factories import (
    ENTRY_DICTIONARY,
    PASSWORD,
    SETUP,
    VITALS,
    make_committee,
    make_entry_study,
    make_study,
    make_user,
)
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.ethics.models import CommitteeMember
from studies.forms import service as forms
from studies.kernel.roles import Role


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def actions(session: Session) -> list[str]:
    return list(session.execute(select(LedgerEntry.action).order_by(LedgerEntry.seq)).scalars())


def account(client: TestClient, username: str) -> dict[str, Any]:
    listed = {a["username"]: a for a in client.get("/api/v1/admin/accounts").json()}
    return dict(listed[username])


# ── accounts: administration and the own account ─────────────────────────────────────────────

def test_the_administrator_creates_an_account_grants_and_revokes_a_role(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    login(app_client, "root")
    r = app_client.post("/api/v1/admin/accounts", json={
        "username": "new.inv", "display_name": "New Investigator",
        "password": "a long initial passphrase",
        "roles": [{"role": "investigator", "study": "S1", "site": "H01"}]})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == "new.inv" and r.json()["id"]
    assert account(app_client, "new.inv")["active"] is True

    r = app_client.post("/api/v1/admin/accounts/grant",
                        json={"username": "new.inv", "role": "monitor", "study": "S1"})
    assert (r.status_code, r.json()) == (200, {"status": "granted"}), r.text
    granted = account(app_client, "new.inv")["roles"]
    assert len(granted) == 2 and any("monitor" in g for g in granted)

    r = app_client.post("/api/v1/admin/accounts/revoke",
                        json={"username": "new.inv", "role": "monitor", "study": "S1"})
    assert (r.status_code, r.json()) == (200, {"status": "revoked"}), r.text
    assert not any("monitor" in g for g in account(app_client, "new.inv")["roles"])
    assert {"account.role_grant", "account.role_revoke"} <= set(actions(session))

    other = TestClient(app_client.app)
    me = login(other, "new.inv", "a long initial passphrase")
    assert me["username"] == "new.inv"


def test_the_administrator_unlocks_resets_the_password_and_ends_sessions(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1")
    other = TestClient(app_client.app)
    for _ in range(5):
        other.post("/api/v1/auth/login", json={"username": "li.na", "password": "nope"})
    assert other.post("/api/v1/auth/login", json={
        "username": "li.na", "password": PASSWORD}).status_code == 423
    login(app_client, "root")
    assert account(app_client, "li.na")["locked_until"] is not None

    r = app_client.post("/api/v1/admin/accounts/unlock", json={"username": "li.na"})
    assert (r.status_code, r.json()) == (200, {"status": "unlocked"}), r.text
    assert account(app_client, "li.na")["locked_until"] is None
    login(other, "li.na")

    r = app_client.post("/api/v1/admin/accounts/reset-password",
                        json={"username": "li.na", "password": "a fresh temporary passphrase"})
    assert r.status_code == 200, r.text
    assert r.json()["status"].startswith("password reset")
    assert account(app_client, "li.na")["must_change_password"] is True
    assert login(other, "li.na", "a fresh temporary passphrase")["must_change_password"] is True

    r = app_client.post("/api/v1/admin/accounts/revoke-sessions", json={"username": "li.na"})
    assert r.status_code == 200 and r.json()["status"] == "sessions ended", r.text
    assert r.json()["ended"] >= 1
    assert other.get("/api/v1/me").status_code == 401


def test_a_user_changes_the_password_and_enrols_then_the_admin_resets_the_second_factor(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1",
              must_change_password=True)
    assert login(app_client, "li.na")["must_change_password"] is True
    r = app_client.post("/api/v1/account/password", json={
        "current_password": PASSWORD, "new_password": "my very own new passphrase"})
    assert (r.status_code, r.json()) == (200, {"status": "password changed"}), r.text
    assert login(app_client, "li.na", "my very own new passphrase")[
        "must_change_password"] is False

    r = app_client.post("/api/v1/account/second-factor/start")
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/") and secret in \
        r.json()["otpauth_uri"]
    r = app_client.post("/api/v1/account/second-factor/confirm",
                        json={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert codes and all(isinstance(c, str) and c for c in codes)
    assert app_client.get("/api/v1/me").json()["second_factor"] is True

    login(app_client, "root")
    assert account(app_client, "li.na")["totp_enabled"] is True
    r = app_client.post("/api/v1/admin/accounts/reset-second-factor", json={"username": "li.na"})
    assert (r.status_code, r.json()) == (200, {"status": "second factor reset"}), r.text
    assert account(app_client, "li.na")["totp_enabled"] is False


# ── study registry, ethics desk, eCRF metadata ───────────────────────────────────────────────

SETUP_CODE = "ONC-2026-01"
PROTOCOL = {"label": "1.1", "version_date": "2026-03-01", "purpose": "Efficacy of X",
            "legal_basis": "Consent; ethics approval", "research_content": "RCT of X",
            "data_types": "demographics, vital signs", "planned_subjects": 150,
            "planned_records": 3000, "expected_results": "X lowers BP",
            "data_sharing_plan": "on request"}


def test_the_pi_amends_the_protocol_and_adds_a_site(app_client: TestClient, session: Session,
                                                    ledger: Ledger) -> None:
    make_study(session, ledger, SETUP_CODE)
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    login(app_client, "pi")
    r = app_client.post(f"/api/v1/studies/{SETUP_CODE}/protocol-versions",
                        json={"summary": "Larger sample", "protocol": PROTOCOL})
    assert r.status_code == 201, r.text
    pv = r.json()
    assert (pv["number"], pv["label"], pv["amendment_summary"], pv["planned_subjects"],
            pv["version_date"], pv["created_by"]) == (2, "1.1", "Larger sample", 150,
                                                      "2026-03-01", "pi")
    r = app_client.post(f"/api/v1/studies/{SETUP_CODE}/sites", json={
        "code": "S02", "hospital": "Second Hospital", "department": "Cardiology"})
    assert r.status_code == 201, r.text
    assert (r.json()["code"], r.json()["hospital"], r.json()["medical_group"]) == (
        "S02", "Second Hospital", None)
    overview = app_client.get(f"/api/v1/studies/{SETUP_CODE}").json()
    assert "S02" in str(overview) and "Larger sample" in str(overview)
    assert {"protocol.amend", "site.create"} <= set(actions(session))


def test_a_consent_waiver_is_requested_and_the_committee_decides_it(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, SETUP_CODE, public_interest=True)
    committee = make_committee(session, ledger)
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    make_user(session, ledger, "ec", Role.ETHICS_MEMBER)
    login(app_client, "pi")
    r = app_client.post(f"/api/v1/studies/{SETUP_CODE}/waivers", json={
        "ground": "public_interest_statistics", "justification": "Registry statistics",
        "data_deidentified": True})
    assert r.status_code == 201, r.text
    w = r.json()
    assert (w["status"], w["ground"], w["requested_by"], w["decided_on"]) == (
        "requested", "public_interest_statistics", "pi", None)
    assert w["clause"].startswith("§11.3.4.2")

    login(app_client, "ec")
    r = app_client.post(f"/api/v1/studies/{SETUP_CODE}/waivers/{w['id']}/decision", json={
        "committee_id": committee.id, "decision": "approved", "reference": "EC-W-1",
        "decided_on": "2026-02-01"})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["status"], r.json()["decision_reference"],
            r.json()["decided_on"]) == (w["id"], "approved", "EC-W-1", "2026-02-01")
    assert {"consent_waiver.request", "consent_waiver.decide"} <= set(actions(session))


def test_the_ethics_desk_deactivates_a_member(app_client: TestClient, session: Session,
                                             ledger: Ledger) -> None:
    committee = make_committee(session, ledger, members=8)
    member = session.execute(select(CommitteeMember).where(
        CommitteeMember.committee_id == committee.id)).scalars().first()
    assert member is not None
    make_user(session, ledger, "ec", Role.ETHICS_MEMBER)
    login(app_client, "ec")
    r = app_client.post(f"/api/v1/ethics/members/{member.id}/deactivate")
    assert (r.status_code, r.json()) == (200, {"status": "inactive"}), r.text
    session.refresh(member)
    assert member.active is False
    assert "ethics.member_remove" in actions(session)


def test_forms_are_imported_from_odm_given_an_event_confirmed_published_and_versioned(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_study(session, ledger, SETUP_CODE)
    forms.import_redcap(session, ledger, actor=SETUP, study_code=SETUP_CODE,
                        text=ENTRY_DICTIONARY.read_text(encoding="utf-8"))
    xml = forms.export_odm(session, ledger, actor=SETUP, study_code=SETUP_CODE,
                           now=dt.datetime.now(dt.UTC)).decode("utf-8")
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    login(app_client, "pi")
    r = app_client.post("/api/v1/studies/COPY-1/forms/odm", json={"xml": xml})
    assert r.status_code == 201, r.text
    assert r.json()["study"] == "COPY-1" and r.json()["study_created"] is True
    assert [f["form"] for f in r.json()["forms"]] == ["demographics", "vital_signs", "labs"]
    assert all(f["status"] == "draft" for f in r.json()["forms"])

    r = app_client.post("/api/v1/studies/COPY-1/events", json={
        "name": "baseline", "label_zh": "基线", "label_en": "Baseline",
        "form_names": ["vital_signs"]})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "baseline", "label_zh": "基线", "label_en": "Baseline",
                        "forms": ["vital_signs"]}

    base = "/api/v1/studies/COPY-1/forms/demographics/versions"
    version = app_client.get(f"{base}/1").json()
    unconfirmed = [i["name"] for g in version["groups"] for i in g["items"]
                   if not i["classification_confirmed"]]
    assert unconfirmed
    for name in unconfirmed:
        r = app_client.patch(f"{base}/1/items/{name}", json={"confirm_classification": True})
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["classification_confirmed"]) == (name, True)
    r = app_client.patch(f"{base}/1/items/sex", json={"required": False})
    assert (r.status_code, r.json()["required"]) == (200, False), r.text
    r = app_client.post(f"{base}/1/publish")
    assert r.status_code == 200, r.text
    assert r.json() == {"form": "demographics", "version": 1, "status": "published"}
    r = app_client.post(base)
    assert r.status_code == 201, r.text
    assert r.json() == {"form": "demographics", "version": 2, "status": "draft"}
    listed = {f["name"]: f for f in app_client.get("/api/v1/studies/COPY-1/forms").json()}
    assert [(v["number"], v["status"]) for v in listed["demographics"]["versions"]] == [
        (1, "published"), (2, "draft")]
    assert {"form.import", "event.define", "item.update", "form.publish",
            "form.new_version"} <= set(actions(session))


def test_the_pi_sets_entry_rules_and_the_monitor_reopens_a_query(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    code = "ENT-2026-01"
    make_entry_study(session, ledger, code)
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR, study=code)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=code)
    make_user(session, ledger, "mon", Role.MONITOR, study=code)
    login(app_client, "pi")
    r = app_client.put(f"/api/v1/studies/{code}/entry/settings", json={
        "allow_incomplete": True, "sdv_mode": "key", "sdv_key_items": ["sbp"]})
    assert r.status_code == 200, r.text
    assert (r.json()["allow_incomplete"], r.json()["sdv_mode"], r.json()["sdv_key_items"]) == (
        True, "key", ["sbp"])
    assert isinstance(r.json()["reasons"], dict)
    assert app_client.get(f"/api/v1/studies/{code}/entry/settings").json()["sdv_mode"] == "key"

    login(app_client, "inv")
    form = f"/api/v1/studies/{code}/entry/S01-ENT01/baseline/vital_signs"
    assert app_client.put(form, json={"base_version": 0, "values": VITALS}).status_code == 200
    login(app_client, "mon")
    r = app_client.post(f"/api/v1/studies/{code}/queries", json={
        "subject": "S01-ENT01", "event": "baseline", "form": "vital_signs", "item": "sbp",
        "text": "check"})
    qid = r.json()["id"]
    assert app_client.post(f"/api/v1/studies/{code}/queries/{qid}/close",
                           json={"text": "ok"}).json()["status"] == "closed"
    r = app_client.post(f"/api/v1/studies/{code}/queries/{qid}/reopen",
                        json={"text": "the source says otherwise"})
    assert (r.status_code, r.json()) == (200, {"query": qid, "status": "open"}), r.text
    wl = app_client.get(f"/api/v1/studies/{code}/worklist").json()
    assert [q["id"] for q in wl["open_queries"]] == [qid]
    assert {"entry.settings", "query.reopen"} <= set(actions(session))
