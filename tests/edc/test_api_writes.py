"""The /api/v1 write routes no other test calls, each through the real app as the role that
may use it, with valid input: the status, the JSON body the user sees and one effect (so that
each route's declared response model is proven to fit what it answers)."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pyotp
import pytest
from factories import (
    ENTRY_DICTIONARY,
    PASSWORD,
    SETUP,
    VITALS,
    login_as,
    make_committee,
    make_entry_study,
    make_extract_study,
    make_lock_team,
    make_study,
    make_user,
)
from fastapi.testclient import TestClient
from pages_util import ENGLISH
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.ethics.models import CommitteeMember
from studies.extracts import build as builder
from studies.extracts import review as extract_review
from studies.extracts.models import ExtractRequest
from studies.extracts.schemas import DecisionIn
from studies.forms import service as forms
from studies.kernel.roles import Role
from studies.randomisation import service as rnd
from studies.randomisation.schemas import SchemeIn


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

    other = TestClient(app_client.app, base_url="http://testserver", headers=ENGLISH)
    me = login(other, "new.inv", "a long initial passphrase")
    assert me["username"] == "new.inv"


def test_the_administrator_unlocks_resets_the_password_and_ends_sessions(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "root", Role.ADMIN)
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1")
    other = TestClient(app_client.app, base_url="http://testserver", headers=ENGLISH)
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

    r = app_client.post("/api/v1/account/second-factor/start", json={})
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
    waiver_id = w["id"]
    r = app_client.post(f"/api/v1/studies/{SETUP_CODE}/waivers/{waiver_id}/decision", json={
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
    r = app_client.post(f"/api/v1/ethics/members/{member.id}/deactivate", json={})
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
        r = app_client.patch(f"/api/v1/studies/COPY-1/forms/demographics/versions/1/items/{name}",
                             json={"confirm_classification": True})
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["classification_confirmed"]) == (name, True)
    r = app_client.patch("/api/v1/studies/COPY-1/forms/demographics/versions/1/items/sex",
                         json={"required": False})
    assert (r.status_code, r.json()["required"]) == (200, False), r.text
    r = app_client.post("/api/v1/studies/COPY-1/forms/demographics/versions/1/publish", json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"form": "demographics", "version": 1, "status": "published"}
    r = app_client.post("/api/v1/studies/COPY-1/forms/demographics/versions", json={})
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


# ── lock, unlock, randomisation and unblinding ───────────────────────────────────────────────

LOCK_STUDY = "ENT-2026-01"
S1, S2, S3 = "S01-ENT01", "S01-ENT02", "S01-ENT03"


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Any]:
    """A study with three subjects and its lock team (dm, pi, stat, inv, mon); S1's vital
    signs are entered and await SDV."""
    made = make_entry_study(session, ledger, LOCK_STUDY, subjects=(S1, S2, S3))
    t: dict[str, Any] = dict(make_lock_team(session, ledger, LOCK_STUDY))
    entry.save_form(session, ledger, actor=t["inv"], study_code=LOCK_STUDY, subject_code=S1,
                    event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    t["study"] = made["study"]
    return t


def sign(client: TestClient, url: str, who: str, role: str) -> dict[str, Any]:
    login(client, who)
    r = client.post(url, json={"role": role, "username": who, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_the_data_manager_reads_the_prelock_report_and_sets_the_lock_settings(
        app_client: TestClient, session: Session, team: dict[str, Any]) -> None:
    login(app_client, "dm")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/locks/report", json={"scope": "study"})
    assert r.status_code == 200, r.text
    [report] = r.json()
    assert report["open"] == 1 and report["open_queries"] == []
    assert [(f["subject"], f["form"]) for f in report["unverified_forms"]] == [
        (S1, "vital_signs")]
    assert app_client.get(f"/api/v1/studies/{LOCK_STUDY}/locks").json()["locks"] == []

    r = app_client.put(f"/api/v1/studies/{LOCK_STUDY}/lock-settings",
                       json={"allow_query_answers": True})
    assert (r.status_code, r.json()) == (200, {"allow_query_answers": True}), r.text
    panel = app_client.get(f"/api/v1/studies/{LOCK_STUDY}/locks").json()
    assert panel["settings"] == {"allow_query_answers": True}
    assert "lock.settings" in actions(session)


def test_unlock_requests_are_withdrawn_rejected_or_signed_and_relocked(
        app_client: TestClient, session: Session, team: dict[str, Any]) -> None:
    login(app_client, "dm")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/locks",
                        json={"scope": "study", "override_reason": "SDV waived"})
    assert r.status_code == 201, r.text
    unlocks_url = f"/api/v1/studies/{LOCK_STUDY}/unlocks"
    change = {"changes": [{"subject": S1, "form": "vital_signs", "fields": ["sbp"]}],
              "reason": "late lab report", "planned_date": "2026-12-01", "period_hours": 24}

    r = app_client.post(unlocks_url, json=change)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["status"], first["requested_by"], first["planned_date"],
            first["changes"]) == ("pending", "dm", "2026-12-01",
                                  [{"subject": S1, "form": "vital_signs", "fields": ["sbp"]}])
    rid = first["id"]
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/unlocks/{rid}/withdraw",
                        json={"reason": "not needed"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["closed_by"], r.json()["close_reason"]) == (
        "withdrawn", "dm", "not needed")

    second = app_client.post(unlocks_url, json=change).json()
    login(app_client, "pi")
    rid = second["id"]
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/unlocks/{rid}/reject",
                        json={"reason": "use a query"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["closed_by"]) == ("rejected", "pi")

    login(app_client, "dm")
    third = app_client.post(unlocks_url, json=change).json()
    rid = third["id"]
    for who, role in (("pi", "principal_investigator"), ("dm", "data_manager"),
                      ("stat", "statistician")):
        signed = sign(app_client, f"/api/v1/studies/{LOCK_STUDY}/unlocks/{rid}/sign",
                      who, role)
    assert signed["status"] == "active" and signed["ends_at"] is not None
    login(app_client, "dm")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/unlocks/{rid}/relock", json={})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["closed_by"]) == ("relocked", "dm")
    assert r.json()["relock_snapshot_sha256"]
    panel = app_client.get(f"/api/v1/studies/{LOCK_STUDY}/locks").json()
    assert {u["id"]: u["status"] for u in panel["unlock_requests"]} == {
        first["id"]: "withdrawn", second["id"]: "rejected", third["id"]: "relocked"}
    assert {"unlock.withdrawn", "unlock.rejected", "unlock.relocked"} <= set(actions(session))


def test_the_statistician_imports_a_list_and_the_investigator_randomises_from_it(
        app_client: TestClient, session: Session, team: dict[str, Any]) -> None:
    login(app_client, "stat")
    r = app_client.put(f"/api/v1/studies/{LOCK_STUDY}/randomisation/scheme",
                       json={"method": "list", "arms": ["A", "B"]})
    assert r.status_code == 200, r.text
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/randomisation/list",
                        json={"csv": "stratum,seq,arm\nS01,1,B\nS01,2,A\n"})
    assert (r.status_code, r.json()) == (200, {"rows": 2}), r.text
    login(app_client, "inv")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/subjects/{S1}/randomise", json={})
    assert r.status_code == 201, r.text
    assert (r.json()["subject"], r.json()["seq"], r.json()["arm"], r.json()["randomised_by"]) \
        == (S1, 1, "B", "inv")
    assert "randomisation.list_import" in actions(session)


def test_the_pi_unblinds_one_subject_in_an_emergency(
        app_client: TestClient, session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    team["study"].blinded = True
    session.flush()
    rnd.configure(session, ledger, actor=team["stat"], study_code=LOCK_STUDY,
                  data=SchemeIn(method="blocks", arms=["A", "B"], block_sizes=[2]))
    login(app_client, "inv")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/subjects/{S1}/randomise", json={})
    assert r.status_code == 201 and r.json()["arm"] == rnd.SEALED, r.text
    login(app_client, "pi")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/subjects/{S1}/emergency-unblinding",
                        json={"reason": "anaphylaxis, the treating physician needs the arm",
                              "username": "pi", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == S1 and r.json()["arm"] in ("A", "B")
    assert "unblinding.emergency" in actions(session)


def test_the_statistician_and_the_pi_sign_an_unblinding_of_the_locked_study(
        app_client: TestClient, session: Session, ledger: Ledger, state: Any,
        team: dict[str, Any]) -> None:
    team["study"].blinded = True
    session.flush()
    rnd.configure(session, ledger, actor=team["stat"], study_code=LOCK_STUDY,
                  data=SchemeIn(method="blocks", arms=["A", "B"], block_sizes=[2]))
    rnd.randomise(session, ledger, actor=team["inv"],
                  keys=rnd.keys_from(state.keys.deid_key),
                  study_code=LOCK_STUDY, subject_code=S1)
    login(app_client, "dm")
    assert app_client.post(f"/api/v1/studies/{LOCK_STUDY}/locks", json={
        "scope": "study", "override_reason": "final"}).status_code == 201
    login(app_client, "stat")
    r = app_client.post(f"/api/v1/studies/{LOCK_STUDY}/unblinding",
                        json={"reason": "final analysis"})
    assert r.status_code == 201, r.text
    u = r.json()
    assert (u["status"], u["kind"], u["requested_by"], u["reason"], u["effective_at"]) == (
        "pending", "study", "stat", "final analysis", None)
    assert len(u["content_sha256"]) == 64
    uid = u["id"]
    url = f"/api/v1/studies/{LOCK_STUDY}/unblinding/{uid}/sign"
    assert sign(app_client, url, "pi", "principal_investigator")["status"] == "pending"
    done = sign(app_client, url, "stat", "statistician")
    assert (done["id"], done["status"]) == (u["id"], "effective") and done["effective_at"]
    login(app_client, "pi")
    [alloc] = app_client.get(f"/api/v1/studies/{LOCK_STUDY}/allocations").json()
    assert alloc["arm"] in ("A", "B")
    assert "unblinding.effective" in actions(session)


# ── extracts ─────────────────────────────────────────────────────────────────────────────────

EXTRACT_STUDY = "EXT-2026-01"


def test_an_extract_is_requested_its_failed_checks_overridden_and_its_destruction_recorded(
        app_client: TestClient, session: Session, ledger: Ledger, state: Any,
        tmp_path: Path) -> None:
    state.settings.extract_dir = tmp_path / "extracts"
    make_extract_study(session, ledger, EXTRACT_STUDY, n=12)
    make_user(session, ledger, "sponsor1", Role.SPONSOR)
    make_user(session, ledger, "dm", Role.DATA_MANAGER)
    members = [login_as(session, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER, study=EXTRACT_STUDY)
               for i in range(3)]
    officer = login_as(session, ledger, "dso", Role.SECURITY_OFFICER, study=EXTRACT_STUDY)
    ident = tmp_path / "sponsor.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    login(app_client, "sponsor1")
    r = app_client.post(f"/api/v1/studies/{EXTRACT_STUDY}/extracts", json={
        "purpose": "Efficacy analysis by age band", "tier": "lds",
        "fields": ["demographics.ethnicity", "labs.hba1c"], "recipient_org": "example-pharma",
        "recipient_key": pub, "use_from": dt.date.today().isoformat(),
        "use_until": (dt.date.today() + dt.timedelta(days=90)).isoformat()})
    assert r.status_code == 201, r.text
    req = r.json()
    assert (req["study"], req["tier"], req["requested_by"], req["recipients"]) == (
        EXTRACT_STUDY, "lds", "sponsor1", ["sponsor1"])
    assert (req["status"], req["build"]["state"], req["destruction_at"]) == (
        "pending", "none", None)
    rid = req["id"]
    assert app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "dua", "username": "sponsor1", "password": PASSWORD}).status_code == 201
    for m in [officer, *members]:  # the first review (初审), then the committee
        extract_review.decide(session, ledger, actor=m, request_id=rid,
                              data=DecisionIn(kind="vote" if m in members else "officer",
                                              approve=True, username=m.username,
                                              password=PASSWORD))
    login(app_client, "dm")
    assert app_client.post(f"/api/v1/extracts/{rid}/build", json={}).status_code == 202
    builder.build(session, ledger, request_id=rid, out_dir=state.settings.extract_dir,
                  keys=builder.BuildKeys(deid_key=state.keys.deid_key,
                                         signing_key=state.keys.signing_key,
                                         code_index=state.keys.code_index_keys()))
    row = session.get(ExtractRequest, rid)
    assert row is not None
    row.build_state = "blocked"  # as a failed pre-transfer check leaves it
    session.flush()
    r = app_client.post(f"/api/v1/extracts/{rid}/override",
                        json={"reason": "incomplete labs are expected at baseline"})
    assert (r.status_code, r.json()) == (200, {"id": rid, "build": "done"}), r.text

    login(app_client, "sponsor1")
    assert app_client.get(f"/api/v1/extracts/{rid}/package").status_code == 200
    certificate = b"%PDF destruction certificate"
    app_client.get("/login")  # an upload is not JSON: it carries the CSRF cookie as a header
    r = app_client.post(f"/api/v1/extracts/{rid}/destruction",
                        files={"certificate": ("cert.pdf", certificate, "application/pdf")},
                        headers={"X-CSRF-Token": app_client.cookies["edc_csrf"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": rid,
                        "destruction_sha256": hashlib.sha256(certificate).hexdigest()}
    events = [t["event"] for t in app_client.get(f"/api/v1/extracts/{rid}").json()["transfers"]]
    assert events == ["built", "check_override", "downloaded", "destruction"]
    assert {"extract.check_override", "extract.destruction"} <= set(actions(session))
