"""REDCap's API at ``POST /api/``, driven by the real PyCap client (and a REDCapR-style raw curl
call) against a real uvicorn server whose every request commits: an analyst's unchanged PyCap
script reads metadata and records, imports a change with its reason, and reads the log; and
every rule of the system holds through it (identifiers, reasons, locks, site scope,
permissions, the audit trail)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serving
from factories import (
    DEMOGRAPHICS,
    LOOSE_AUTH,
    PASSWORD,
    VITALS,
    approved_export,
    make_entry_study,
    make_user,
)
from redcap import Project, RedcapError
from sqlalchemy import select

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import AppState, build_state
from studies.accounts import service as accounts
from studies.accounts import tokens
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.roles import Role
from studies.locks import service as locks
from studies.locks.schemas import LockIn

STUDY = "ENT-2026-01"
S1, S2 = "S01-ENT01", "S02-ENT02"


def _token(session: Any, ledger: Ledger, username: str, role: Role, *,
           site: str | None = None) -> str:
    accounts.create_user(session, ledger, actor=accounts_system(), username=username,
                         display_name=username.title(), password=PASSWORD,
                         roles=[(role, STUDY, site) if site else (role, STUDY)],
                         must_change_password=False)
    _, actor = accounts.login(session, ledger, username=username, password=PASSWORD,
                              client="10.0.0.7", config=LOOSE_AUTH)
    return tokens.create_token(session, ledger, actor=actor, name="pycap", role=role,
                               study=STUDY, days=30, redcap=True).token


def accounts_system() -> Any:
    from studies.kernel.actor import SYSTEM

    return SYSTEM


@pytest.fixture
def served(fresh_url: str, tmp_path: Path) -> Iterator[tuple[str, AppState, dict[str, str]]]:
    """A served entry study at two sites (S1 at S01, S2 at S02) with S1's demographics
    entered, and REDCap tokens of an investigator (every site), an investigator of site S02,
    a monitor, a statistician with an approved export (raw quasi-identifiers) and one
    without."""
    keys = tmp_path / "keys"
    keyring.create(keys, origin="redcap.test/ledger")
    engine = make_engine(fresh_url)
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger, subjects=(S1, S2), sites=("S01", "S02"))
        toks = {"inv": _token(session, ledger, "inv", Role.INVESTIGATOR),
                "inv2": _token(session, ledger, "inv2", Role.INVESTIGATOR, site="S02"),
                "mon": _token(session, ledger, "mon", Role.MONITOR),
                "stat": _token(session, ledger, "stat", Role.STATISTICIAN),
                "stat2": _token(session, ledger, "stat2", Role.STATISTICIAN)}
        # the statistician's export (raw quasi-identifiers) was approved; stat2's was not
        approved_export(session, STUDY, accounts.find_user(session, "stat"))
        make_user(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
        _, inv = accounts.login(session, ledger, username="inv", password=PASSWORD,
                                client="10.0.0.7", config=LOOSE_AUTH)
        entry.save_form(session, ledger, actor=inv, study_code=STUDY, subject_code=S1,
                        event_name="baseline", form_name="demographics",
                        data=SaveIn(base_version=0, values=DEMOGRAPHICS))
    engine.dispose()
    state = build_state(Settings(database_url=fresh_url, key_dir=keys, environment="test",
                                 second_factor_enforced=False))
    with serving(state) as url:
        yield url + "/api/", state, toks


def _ledger(state: AppState, action: str) -> list[LedgerEntry]:
    with state.sessions() as s:
        return list(s.execute(select(LedgerEntry).where(LedgerEntry.action == action)
                              .order_by(LedgerEntry.seq)).scalars())


def test_an_unchanged_pycap_script_reads_and_writes(
        served: tuple[str, AppState, dict[str, str]]) -> None:
    url, state, toks = served
    assert len(toks["inv"]) == 32  # PyCap refuses any other length
    proj = Project(url, toks["inv"])

    assert str(proj.export_version()) == "14.5.0"
    info = proj.export_project_info()
    assert info["is_longitudinal"] == 1 and info["has_repeating_instruments_or_events"] == 1
    meta = proj.export_metadata()
    assert meta[0]["field_name"] == "record_id" and proj.def_field == "record_id"
    by_name = {m["field_name"]: m for m in meta}
    assert by_name["patient_name"]["identifier"] == "y"
    assert by_name["sex"]["select_choices_or_calculations"] == "1, 男 / Male | 2, 女 / Female"
    assert by_name["weight"]["text_validation_type_or_show_slider_number"] == "number_1dp"
    assert by_name["pregnant"]["branching_logic"] == "[sex] = '2'"
    assert {i["instrument_name"] for i in proj.export_instruments()} == {
        "demographics", "vital_signs", "labs"}
    names = [f["export_field_name"] for f in proj.export_field_names()]
    assert "symptoms___2" in names and "patient_name" not in names
    assert [e["unique_event_name"] for e in proj.export_events()] == [
        "baseline_arm_1", "followup_arm_1"]
    mapping = proj.export_instrument_event_mappings()
    assert {"arm_num": 1, "unique_event_name": "followup_arm_1", "form": "vital_signs"} in mapping
    assert proj.is_longitudinal

    # a new form: no reason needed for a first entry
    res = proj.import_records([{"record_id": S1, "redcap_event_name": "baseline_arm_1",
                                **VITALS, "symptoms___1": "1", "symptoms___3": "1"}])
    assert res == {"count": 1}
    rows = proj.export_records(records=[S1], events=["baseline_arm_1"])
    assert len(rows) == 1
    row = rows[0]
    assert row["weight"] == "70.0" and row["bmi"] == "22.9"
    assert row["symptoms___1"] == "1" and row["symptoms___2"] == "0"
    assert row["vital_signs_complete"] == "2"
    assert "patient_name" not in row and "phone" not in row  # direct identifiers never leave
    # quasi-identifiers only where an approved export grants them raw (§11.3.4.1 c)
    assert "dob" not in row and "sex" not in row and "visit_date" not in row

    # a change to saved data without a reason is refused in REDCap's error form; nothing kept
    with pytest.raises(RedcapError) as refused:
        proj.import_records([{"record_id": S1, "redcap_event_name": "baseline_arm_1",
                              "weight": "72.5"}])
    assert "reason_for_change" in str(refused.value) and "weight" in str(refused.value)
    assert proj.export_records(records=[S1], fields=["weight"])[0]["weight"] == "70.0"

    res = proj.import_records([{"record_id": S1, "redcap_event_name": "baseline_arm_1",
                                "weight": "72.5", "reason_for_change": "transcription error"}])
    assert res == {"count": 1}
    assert proj.export_records(records=[S1], fields=["weight"])[0]["weight"] == "72.5"
    update = _ledger(state, "entry.update")[-1]
    assert update.reason is not None and update.subject == S1
    assert update.reason.startswith(
        "weight: transcription error; bmi: 服务器重新计算 / recalculated by the server")

    labels = proj.export_records(format_type="csv", forms=["vital_signs"],
                                 raw_or_label="label")
    header, first = labels.splitlines()[:2]
    assert header.split(",")[:4] == ["record_id", "redcap_event_name",
                                     "redcap_repeat_instrument", "redcap_repeat_instance"]
    assert "Checked" in first and "基线 / Baseline" in first and "Complete" in first
    eav = proj.export_records(record_type="eav", records=[S1], fields=["symptoms", "sbp"])
    assert {(e["field_name"], e["value"]) for e in eav} == {
        ("symptoms", "1"), ("symptoms", "3"), ("sbp", "120")}

    log = proj.export_logging()
    change = next(e for e in log if e["action"] == f"Update record {S1}")
    assert change["username"] == "inv" and "weight = '72.5'" in change["details"]
    assert change["reason"].startswith("weight: transcription error")
    assert any(e["action"].startswith("Data export (REDCap API records") for e in log)
    edits = proj.export_logging(log_type="record_edit")
    assert edits and all(e["action"].startswith("Update record") for e in edits)
    assert proj.export_logging(user="mon") == []
    users = {(u["username"], u["edc_role"]) for u in proj.export_users()}
    assert ("inv", "investigator") in users and ("mon", "monitor") in users
    assert all(u["email"] == "" for u in proj.export_users())

    exports = _ledger(state, "entry.export")
    assert exports and "REDCap API records (flat)" in exports[-2].changes  # type: ignore[operator]
    assert len(_ledger(state, "token.use")) >= 15  # every call audited


def test_a_redcapr_style_curl_call_and_its_errors(
        served: tuple[str, AppState, dict[str, str]]) -> None:
    url, state, toks = served

    def curl(*fields: str, lang: str = "en") -> tuple[int, str]:
        out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", url,
                              *(["-H", f"Accept-Language: {lang}"] if lang else []),
                              *[a for f in fields for a in (
                                  "--data-urlencode" if f.startswith("filterLogic=") else "-d",
                                  f)]],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        body, _, status = out.rpartition("\n")
        return int(status), body

    status, body = curl(f"token={toks['inv']}", "content=record", "format=csv", "type=flat",
                        "rawOrLabel=raw", "returnFormat=json", "fields[0]=record_id",
                        "fields[1]=demographics_complete")
    assert status == 200
    assert body.splitlines() == ["record_id,redcap_event_name,redcap_repeat_instrument,"
                                 "redcap_repeat_instance,demographics_complete",
                                 f"{S1},baseline_arm_1,,,2"]
    status, same = curl(f"token={toks['inv']}", "content=record", "format=csv",
                        "fields=record_id,demographics_complete")  # a list written with commas
    assert status == 200 and same == body
    # a quasi-identifier (sex) is left out without an approved export granting it raw
    status, body = curl(f"token={toks['inv']}", "content=record", "format=csv",
                        "fields=record_id,sex")
    assert status == 200 and "sex" not in body.splitlines()[0]
    # the statistician's approved export returns it raw
    status, body = curl(f"token={toks['stat']}", "content=record", "format=csv",
                        "fields=record_id,sex")
    assert status == 200 and body.splitlines()[1] == f"{S1},baseline_arm_1,,,1"
    status, body = curl(f"token={toks['stat2']}", "content=record", "format=json")
    assert status == 403 and "§11.3.4.1 c" in json.loads(body)["error"]  # not approved
    status, body = curl("token=" + "0" * 32, "content=record", "format=json")
    assert status == 401 and "token" in json.loads(body)["error"]
    # a script that sends no Accept-Language reads the hospital's language, Chinese
    status, body = curl("token=" + "0" * 32, "content=record", "format=json", lang="")
    assert status == 401 and "API 令牌无效" in json.loads(body)["error"]
    failed = _ledger(state, "token.use")[-1]
    assert failed.outcome == "failure"
    status, body = curl(f"token={toks['inv']}", "content=record", "format=xml")
    assert status == 422 and "<error>format: supported formats are json and csv" in body
    status, body = curl(f"token={toks['inv']}", "content=record", "format=csv",
                        "fields=nosuchfield")
    assert status == 422 and body.startswith("ERROR: fields: the following values are not "
                                             "valid: nosuchfield")
    status, body = curl(f"token={toks['inv']}", "content=arm", "format=json")
    assert status == 422 and "content: 'arm' is not supported" in json.loads(body)["error"]
    status, body = curl(f"token={toks['inv']}", "content=record", "format=xml",
                        "fields=nosuchfield", "returnFormat=xml")
    assert status == 422 and "<hash>\n  <error>fields: the following" in body

    def put(row: dict[str, str], *extra: str) -> tuple[int, str]:
        return curl(f"token={toks['inv']}", "content=record", "format=json",
                    "returnFormat=json", "data=" + json.dumps([row]), *extra)

    baseline = {"redcap_event_name": "baseline_arm_1", "sbp": "125"}
    status, body = put({"record_id": "S09-NOPE", **baseline})
    assert status == 404 and "S09-NOPE" in json.loads(body)["error"]
    status, body = put({"record_id": S1, **baseline}, "overwriteBehavior=overwrite")
    assert status == 422 and json.loads(body)["error"].startswith("overwriteBehavior: only")
    status, body = put({"record_id": S1, **baseline, **VITALS, "sbp": "125"},
                       "returnContent=ids")
    assert status == 200 and json.loads(body) == [S1]

    # filterLogic, in REDCap's logic syntax, on each subject-event's values
    def filtered(logic: str) -> tuple[int, Any]:
        status, body = curl(f"token={toks['inv']}", "content=record", "format=json",
                            "fields=record_id,sbp", f"filterLogic={logic}")
        return status, json.loads(body)

    assert filtered("[sbp] >= 125 and [smoker] = '0'") == (200, [
        {"record_id": S1, "redcap_event_name": "baseline_arm_1",
         "redcap_repeat_instrument": "", "redcap_repeat_instance": "", "sbp": "125"}])
    assert filtered("[sbp] > 130") == (200, [])
    status, out = filtered("[sex] = '1'")  # a quasi-identifier not exported to this token
    assert status == 422 and out["error"].startswith("filterLogic: 'sex' is not exported")
    status, out = filtered("[nosuch] = 1")
    assert status == 422 and "filterLogic" in out["error"]


def test_scope_permissions_identifiers_and_locks_hold(
        served: tuple[str, AppState, dict[str, str]], tmp_path: Path) -> None:
    url, state, toks = served
    inv = Project(url, toks["inv"])
    inv.import_records([{"record_id": S2, "redcap_event_name": "baseline_arm_1", **VITALS}])

    # an investigator of site S02 sees S02's subject only
    site2 = Project(url, toks["inv2"])
    assert {r["record_id"] for r in site2.export_records()} == {S2}
    with pytest.raises(RedcapError, match="entry.write"):
        site2.import_records([{"record_id": S1, "redcap_event_name": "baseline_arm_1",
                               "sbp": "130", "reason_for_change": "x"}])
    assert all(e["record"] in ("", S2) for e in site2.export_logging())

    # a monitor reads but may not write
    mon = Project(url, toks["mon"])
    assert {r["record_id"] for r in mon.export_records()} == {S1, S2}
    with pytest.raises(RedcapError, match="entry.write|permission|权限"):
        mon.import_records([{"record_id": S2, "redcap_event_name": "baseline_arm_1",
                             "sbp": "130", "reason_for_change": "x"}])

    # a direct identifier never comes in either
    with pytest.raises(RedcapError, match="code index|代码索引"):
        inv.import_records([{"record_id": S1, "redcap_event_name": "baseline_arm_1",
                             "patient_name": "张三"}])

    # all rows or none: a bad second row keeps the first out too
    with pytest.raises(RedcapError, match="row 2"):
        inv.import_records([{"record_id": S2, "redcap_event_name": "followup_arm_1",
                             "redcap_repeat_instance": "1", **VITALS},
                            {"record_id": S2, "redcap_event_name": "followup_arm_1",
                             "redcap_repeat_instance": "2", **VITALS, "sbp": "999"}])
    assert not [r for r in inv.export_records(records=[S2])
                if r["redcap_event_name"] == "followup_arm_1"]

    # a lock answers 423 in REDCap's form
    with state.sessions() as s, s.begin():
        _, dm = accounts.login(s, state.ledger, username="dm", password=PASSWORD,
                               client="10.0.0.7", config=LOOSE_AUTH)
        locks.set_locks(s, state.ledger, actor=dm, study_code=STUDY,
                        data=LockIn(scope="study", override_reason="test of the REDCap API"))
    payload = {"token": toks["inv"], "content": "record", "format": "json",
               "returnFormat": "json", "overwriteBehavior": "normal",
               "data": json.dumps([{"record_id": S2, "redcap_event_name": "baseline_arm_1",
                                    "sbp": "130", "reason_for_change": "late result"}])}
    import httpx

    resp = httpx.post(url, data=payload, timeout=30)
    assert resp.status_code == 423 and "数据已锁定" in resp.json()["error"]
    assert inv.export_records(records=[S2], fields=["sbp"])[0]["sbp"] == "120"


def test_a_statistician_exports_through_pycap_only_with_an_approved_export(
        served: tuple[str, AppState, dict[str, str]]) -> None:
    """An exporter's token (the statistician's) needs an approved export request
    (§11.3.4.1 c): without one PyCap gets REDCap's error naming the rule; with one covering
    raw quasi-identifiers the rows hold them, and the export's ledger entry names the
    approval."""
    url, state, toks = served
    with pytest.raises(RedcapError) as refused:
        Project(url, toks["stat2"]).export_records()
    # PyCap sends no Accept-Language: the error is in the default language, Chinese
    assert "§11.3.4.1 c" in str(refused.value) and "已批准的导出申请" in str(refused.value)
    rows = Project(url, toks["stat"]).export_records(records=[S1])
    assert rows[0]["dob"] == "1980-05-01" and rows[0]["sex"] == "1"
    assert "patient_name" not in rows[0]
    last = _ledger(state, "entry.export")[-1]
    assert last.actor == "stat" and '"approval"' in (last.changes or "")
    assert '"raw"' in (last.changes or "")
