"""The data-entry JSON API: same rules as the domain, errors naming the field, 409 with what
changed since, nothing written on bad input; sponsors and the administrator see nothing."""

from __future__ import annotations

import pytest
from factories import VITALS, approved_export, make_entry_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.service import Ledger
from studies.entry.models import FormRecord, ValueVersion
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
FORM = f"/api/v1/studies/{STUDY}/entry/S01-ENT01/baseline/vital_signs"


@pytest.fixture
def study(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)


def written(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(ValueVersion)).scalar_one())


def test_save_correct_and_stale_save_over_the_api(app_client: TestClient, session: Session,
                                                  study: None) -> None:
    login(app_client, "inv")
    r = app_client.put(FORM, json={"base_version": 0, "values": VITALS})
    assert r.status_code == 200 and r.json()["version"] == 1
    r = app_client.put(FORM, json={"base_version": 1, "values": {**VITALS, "sbp": "131"}})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "reasons.sbp"
    r = app_client.put(FORM, json={"base_version": 1, "values": {**VITALS, "sbp": "131"},
                                   "reasons": {"sbp": "transcription_error"}})
    assert r.json()["version"] == 2
    r = app_client.put(FORM, json={"base_version": 1, "values": {**VITALS, "sbp": "140"},
                                   "reasons": {"sbp": "transcription_error"}})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["details"]["current_version"] == 2
    assert err["details"]["changes_since"][0]["after"] == "131"
    assert err["field"] == "sbp"
    assert [(c["field"], c["base"], c["theirs"], c["yours"], c["by"])
            for c in err["details"]["conflicts"]] == [("sbp", "120", "131", "140", "inv")]
    hist = app_client.get(FORM + "/items/sbp/history").json()
    assert [(x["before"], x["after"]) for x in hist] == [(None, "120"), ("120", "131")]
    assert app_client.get(FORM).json()["values"]["sbp"] == "131"


def test_a_stale_save_of_other_fields_merges_over_the_api(
        app_client: TestClient, session: Session, study: None) -> None:
    login(app_client, "inv")
    app_client.put(FORM, json={"base_version": 0, "values": VITALS})
    app_client.put(FORM, json={"base_version": 1, "values": {**VITALS, "sbp": "131"},
                               "reasons": {"sbp": "transcription_error"}})
    r = app_client.put(FORM, json={"base_version": 1, "values": {**VITALS, "weight": "71"},
                                   "reasons": {"weight": "transcription_error"}})
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["merged_from"]) == (3, 1)
    assert [c["field"] for c in r.json()["changes"]] == ["weight", "bmi"]
    values = app_client.get(FORM).json()["values"]
    assert (values["sbp"], values["weight"]) == ("131", "71")


@pytest.mark.parametrize("body,field", [
    ({"base_version": 0, "values": {**VITALS, "sbp": "abc"}}, "sbp"),
    ({"base_version": 0, "values": {**VITALS, "sbp": "x" * 1_000_000}}, "sbp"),
    ({"base_version": 0, "values": {**VITALS, "sbp": {"nested": 1}}}, "values.sbp"),
    ({"base_version": 0, "values": {**VITALS, "unknown_field": "1"}}, "unknown_field"),
    ({"base_version": "one", "values": VITALS}, "base_version"),
    ({"base_version": 0, "values": VITALS, "extra": 1}, "extra"),
], ids=["malformed", "1MB-text", "wrong-type", "unknown-field", "bad-version", "extra-key"])
def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
        app_client: TestClient, session: Session, study: None, body: dict, field: str) -> None:
    login(app_client, "inv")
    r = app_client.put(FORM, json=body)
    assert 400 <= r.status_code < 500
    assert (r.json()["error"]["field"] or "").startswith(field)
    assert written(session) == 0


def test_forms_of_another_study_are_refused(app_client: TestClient, session: Session,
                                            ledger: Ledger, study: None) -> None:
    make_entry_study(session, ledger, "OTHER-01", subjects=("S01-OTH01",))
    login(app_client, "inv")
    r = app_client.put(f"/api/v1/studies/{STUDY}/entry/S01-OTH01/baseline/vital_signs",
                       json={"base_version": 0, "values": VITALS})
    assert r.status_code == 404 and r.json()["error"]["field"] == "subject"
    r = app_client.put("/api/v1/studies/OTHER-01/entry/S01-OTH01/baseline/vital_signs",
                       json={"base_version": 0, "values": VITALS})
    assert r.status_code == 403
    assert session.execute(select(func.count()).select_from(FormRecord)).scalar() == 0


@pytest.mark.parametrize("role", [Role.SPONSOR, Role.ADMIN, Role.STATISTICIAN])
def test_sponsors_and_the_administrator_see_no_patient_level_data(
        app_client: TestClient, session: Session, ledger: Ledger, study: None,
        role: Role) -> None:
    make_user(session, ledger, "other", role, study=None if role == Role.ADMIN else STUDY)
    login(app_client, "other")
    for url in (FORM, f"/api/v1/studies/{STUDY}/entry", f"/api/v1/studies/{STUDY}/queries",
                f"/api/v1/studies/{STUDY}/export/odm",
                f"/api/v1/studies/{STUDY}/export/forms/vital_signs.csv"):
        assert app_client.get(url).status_code == 403, url


def test_monitor_verifies_and_queries_over_the_api(app_client: TestClient, session: Session,
                                                   study: None) -> None:
    login(app_client, "inv")
    app_client.put(FORM, json={"base_version": 0, "values": VITALS})
    login(app_client, "mon")
    assert app_client.put(FORM, json={"base_version": 1, "values": VITALS}).status_code == 403
    r = app_client.post(f"/api/v1/studies/{STUDY}/sdv",
                        json={"subject": "S01-ENT01", "event": "baseline", "form": "vital_signs"})
    assert r.json()["count"] == 5
    r = app_client.post(f"/api/v1/studies/{STUDY}/queries", json={
        "subject": "S01-ENT01", "event": "baseline", "form": "vital_signs", "item": "sbp",
        "text": "check"})
    assert r.status_code == 201
    qid = r.json()["id"]
    wl = app_client.get(f"/api/v1/studies/{STUDY}/worklist").json()
    assert [q["id"] for q in wl["open_queries"]] == [qid] and wl["unverified_forms"] == []
    login(app_client, "inv")
    r = app_client.post(f"/api/v1/studies/{STUDY}/queries/{qid}/answer",
                        json={"text": "fixed", "change_value": True, "value": "125"})
    assert r.json()["save"]["sdv_cleared"] == ["sbp"]
    login(app_client, "mon")
    wl = app_client.get(f"/api/v1/studies/{STUDY}/worklist").json()
    assert [c["item"] for c in wl["changed_after_sdv"]] == ["sbp"]
    assert app_client.post(f"/api/v1/studies/{STUDY}/queries/{qid}/close",
                           json={"text": "ok"}).json()["status"] == "closed"


def test_import_over_the_api_returns_counts_or_numbered_errors(
        app_client: TestClient, session: Session, ledger: Ledger, study: None) -> None:
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
    login(app_client, "dm")
    url = f"/api/v1/studies/{STUDY}/entry/import"
    # an upload is not JSON: a session-cookie client sends the CSRF header (the edc_csrf cookie)
    app_client.headers["X-CSRF-Token"] = app_client.cookies["edc_csrf"]
    good = ("record_id,redcap_event_name,visit_date,height,weight,sbp,smoker\n"
            "S01-ENT01,baseline_arm_1,2026-05-01,175,70,120,0\n")
    r = app_client.post(url, files={"file": ("data.csv", good.encode(), "text/csv")})
    assert r.status_code == 200 and (r.json()["rows"], r.json()["records"]) == (1, 1)
    bad = good.replace("S01-ENT01", "S01-NOPE")
    r = app_client.post(url, files={"file": ("data.csv", bad.encode(), "text/csv")})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"][0]["row"] == 2
    r = app_client.post(url, files={"file": ("data.csv", b"\xff\xfe\x00bad", "text/csv")})
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"


def test_a_form_csv_has_a_byte_order_mark_for_excel(
        app_client: TestClient, session: Session, ledger: Ledger, study: None) -> None:
    dm = make_user(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
    login(app_client, "inv")
    assert app_client.put(FORM, json={"base_version": 0, "values": VITALS}).status_code == 200
    app_client.cookies.clear()
    login(app_client, "dm")
    r = app_client.get(f"/api/v1/studies/{STUDY}/export/forms/demographics.csv")
    assert r.status_code == 403 and "§11.3.4.1 c" in r.text  # no approved export request
    approved_export(session, STUDY, dm)
    r = app_client.get(f"/api/v1/studies/{STUDY}/export/forms/demographics.csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    r = app_client.get(f"/api/v1/studies/{STUDY}/export/forms/vital_signs.csv")
    text = r.content.decode("utf-8-sig")
    assert text.startswith("subject,site,event") and "S01-ENT01" in text
