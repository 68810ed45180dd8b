"""Lock panel, pre-lock report, unlock sign-off pages, team inbox, randomisation pages and the
JSON API for the same, as the people using them see them; and ``edc locks relock-expired``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import (
    LOOSE_AUTH,
    VITALS,
    make_entry_study,
    make_lock_team,
)
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.cli import main
from edc.db import make_engine, session_factory
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.actor import Actor
from studies.kernel.roles import Role
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.locks import unlock as unlocks
from studies.locks.models import UnlockRequest
from studies.randomisation import service as rnd
from studies.randomisation.schemas import SchemeIn

STUDY = "ENT-2026-01"
S1 = "S01-ENT01"
PASSWORD = "correct horse battery staple"


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def login(client: TestClient, username: str) -> None:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def csrf(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return str(soup(page.text).find("input", {"name": "csrf_token"})["value"])


def entries(session: Session, action: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(LedgerEntry.action == action)
                                .order_by(LedgerEntry.seq)).scalars())


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Actor]:
    make_entry_study(session, ledger)
    t = make_lock_team(session, ledger, STUDY)
    entry.save_form(session, ledger, actor=t["inv"], study_code=STUDY, subject_code=S1,
                    event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    return t


def test_the_data_manager_reads_the_prelock_report_and_locks_with_an_override_reason(
        app_client: TestClient, session: Session, team: dict[str, Any]) -> None:
    login(app_client, "dm")
    panel = soup(app_client.get(f"/studies/{STUDY}/locks").text)
    assert panel.find("form", {"action": f"/studies/{STUDY}/locks/report"}) is not None
    rep = app_client.get(f"/studies/{STUDY}/locks/report", params={"scope": "study"})
    page = soup(rep.text)
    assert rep.status_code == 200
    assert page.select_one("ul.unverified_forms li") is not None  # vital_signs awaits SDV
    assert "Open items in total: 1" in page.select_one("p.open-items").text
    token = str(page.find("input", {"name": "csrf_token"})["value"])
    r = app_client.post(f"/studies/{STUDY}/locks", data={"scope": "study",
                                                          "csrf_token": token},
                        follow_redirects=False)
    assert r.status_code == 422
    assert "override reason" in soup(r.text).get_text()
    r = app_client.post(f"/studies/{STUDY}/locks", data={
        "scope": "study", "override_reason": "SDV waived", "csrf_token": token},
        follow_redirects=False)
    assert r.status_code == 303
    panel = soup(app_client.get(f"/studies/{STUDY}/locks").text)
    cells = [td.text for td in panel.select("table.locks tbody td")]
    assert cells[1] == "dm" and cells[6] == "SDV waived"
    snap = panel.select_one("code.snapshot").text
    assert len(snap) == 64 and int(snap, 16) >= 0


def test_other_roles_cannot_lock_or_see_the_lock_form(
        app_client: TestClient, session: Session, team: dict[str, Any]) -> None:
    login(app_client, "inv")
    panel = soup(app_client.get(f"/studies/{STUDY}/locks").text)
    assert panel.find("form", {"action": f"/studies/{STUDY}/locks/report"}) is None
    r = app_client.post(f"/api/v1/studies/{STUDY}/locks", json={"scope": "study"})
    assert r.status_code == 403


def test_a_write_to_locked_data_through_the_api_is_423_and_the_refusal_is_in_the_ledger(
        app_client: TestClient, session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    login(app_client, "stat")
    r = app_client.put(f"/api/v1/studies/{STUDY}/randomisation/scheme",
                       json={"method": "blocks", "arms": ["A", "B"], "block_sizes": [4]})
    assert r.status_code == 200, r.text
    login(app_client, "dm")
    r = app_client.post(f"/api/v1/studies/{STUDY}/locks",
                        json={"scope": "subjects", "subjects": [S1], "override_reason": "ok"})
    assert r.status_code == 201 and r.json()[0]["snapshot_sha256"]
    login(app_client, "inv")
    r = app_client.post(f"/api/v1/studies/{STUDY}/subjects/{S1}/randomise", json={})
    assert r.status_code == 423
    err = r.json()["error"]
    assert err["code"] == "locked" and "by dm" in err["message"]
    refused = entries(session, "lock.refused")
    assert refused and refused[-1].actor == "inv" and refused[-1].outcome == "denied"


def test_unlock_request_reaches_the_signers_inbox_they_see_the_full_text_and_three_sign(
        app_client: TestClient, session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    login(app_client, "dm")
    app_client.post(f"/api/v1/studies/{STUDY}/locks",
                    json={"scope": "study", "override_reason": "ok"})
    token = csrf(app_client, f"/studies/{STUDY}/locks")
    r = app_client.post(f"/studies/{STUDY}/unlocks", data={
        "changes": f"{S1} vital_signs sbp", "reason": "late lab report",
        "planned_date": "2026-12-01", "period_hours": "24", "csrf_token": token},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    login(app_client, "inv")  # not a signer: told of the lock, not asked to sign
    home = soup(app_client.get("/").text)
    assert "late lab report" not in home.select_one("ul.inbox").text
    login(app_client, "pi")
    home = soup(app_client.get("/").text)
    waiting = home.select_one("ul.inbox li a")
    assert waiting["href"] == url and "late lab report" in waiting.text
    assert waiting.text.startswith("an unlock request waits for your signature")
    page = soup(app_client.get(url).text)
    text = page.select_one("pre.content").text
    assert "late lab report" in text and f"subject {S1}, form vital_signs, fields: sbp" in text
    shown_hash = page.select_one("code.content-hash").text
    token = str(page.find("input", {"name": "csrf_token"})["value"])
    r = app_client.post(f"{url}/sign", data={
        "role": "principal_investigator", "username": "pi", "password": "wrong",
        "content_sha256": shown_hash, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422 and "wrong password" in soup(r.text).get_text()
    fails = [e for e in entries(session, "signature.sign") if e.outcome == "failure"]
    assert fails and "wrong password" in (fails[-1].reason or "")
    r = app_client.post(f"{url}/sign", data={
        "role": "principal_investigator", "username": "pi", "password": PASSWORD,
        "content_sha256": shown_hash, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    api = url.replace("/studies/", "/api/v1/studies/")
    r = app_client.post(f"{api}/sign", json={"role": "data_manager", "username": "pi",
                                             "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["field"] == "role"
    login(app_client, "dm")
    r = app_client.post(f"{api}/sign", json={"role": "data_manager", "username": "dm",
                                             "password": PASSWORD,
                                             "content_sha256": shown_hash})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    login(app_client, "stat")
    r = app_client.post(f"{api}/sign", json={"role": "statistician", "username": "stat",
                                             "password": PASSWORD})
    assert r.status_code == 200 and r.json()["status"] == "active"
    detail = app_client.get(api).json()
    assert [s["role"] for s in detail["signoffs"]] == [
        "principal_investigator", "data_manager", "statistician"]
    page = soup(app_client.get(url).text)
    assert "active" in page.select_one("p.status").text
    assert len(page.select("ul.signoffs li")) == 3
    login(app_client, "mon")
    r = app_client.post(f"{api}/sign", json={"role": "statistician", "username": "mon",
                                             "password": PASSWORD})
    assert r.status_code == 403


def test_withdraw_and_relock_pages(app_client: TestClient, session: Session, ledger: Ledger,
                                   team: dict[str, Any]) -> None:
    locks.set_locks(session, ledger, actor=team["dm"], study_code=STUDY,
                    data=lock_schemas.LockIn(scope="study", override_reason="ok"))
    req = unlocks.request_unlock(session, ledger, actor=team["dm"], study_code=STUDY,
                               data=lock_schemas.unlock_in_from_form(
                                   changes=S1, reason="r", planned_date="2026-12-01",
                                   period_hours="24"))
    login(app_client, "dm")
    url = f"/studies/{STUDY}/unlocks/{req.id}"
    token = csrf(app_client, url)
    r = app_client.post(f"{url}/withdraw", data={"reason": "not needed", "csrf_token": token},
                        follow_redirects=False)
    assert r.status_code == 303
    assert "withdrawn" in soup(app_client.get(url).text).select_one("p.status").text
    r = app_client.post(f"/studies/{STUDY}/unlocks", data={
        "changes": S1, "reason": "x", "planned_date": "not a date", "period_hours": "24",
        "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422 and "planned_date" in soup(r.text).get_text()
    r = app_client.post(f"/studies/{STUDY}/unlocks", data={
        "changes": S1, "reason": "x", "planned_date": "2026-12-01", "period_hours": "99999",
        "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 422


def test_blinded_allocation_page_shows_sealed_and_emergency_unblinding_shows_the_arm(
        app_client: TestClient, session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    study = entry.study_named(session, STUDY)
    study.blinded = True
    session.flush()
    rnd.configure(session, ledger, actor=team["stat"], study_code=STUDY,
                  data=SchemeIn(method="blocks", arms=["A", "B"], block_sizes=[2]))
    login(app_client, "inv")
    token = csrf(app_client, f"/studies/{STUDY}/randomisation")
    r = app_client.post(f"/studies/{STUDY}/randomisation",
                        data={"subject": S1, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = soup(app_client.get(f"/studies/{STUDY}/randomisation").text)
    assert page.select_one("td.arm").text == rnd.SEALED
    assert page.find("form", class_="emergency") is None
    login(app_client, "pi")
    page = soup(app_client.get(f"/studies/{STUDY}/randomisation").text)
    assert page.select_one("td.arm").text == rnd.SEALED
    token = str(page.find("input", {"name": "csrf_token"})["value"])
    r = app_client.post(f"/studies/{STUDY}/emergency-unblinding", data={
        "subject": S1, "reason": "anaphylaxis", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 200
    assert soup(r.text).select_one("p.arm").text in (f"{S1}: A", f"{S1}: B")
    assert entries(session, "unblinding.emergency")
    login(app_client, "dm")
    assert "EMERGENCY UNBLINDING" in soup(app_client.get("/").text).select_one("ul.inbox").text


@pytest.mark.parametrize("command", [["locks", "relock-expired"], ["worker", "--once"]],
                         ids=["relock-expired", "the worker's sweep"])
def test_relock_expired_command_relocks_unlocks_whose_period_ended(
        monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    keys = tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    assert main(["init"]) == 0
    ledger = Ledger(signer=keyring.load(keys).signer)
    engine = make_engine(fresh_url)
    with session_factory(engine)() as s, s.begin():
        make_entry_study(s, ledger)
        t = make_lock_team(s, ledger, STUDY)
        locks.set_locks(s, ledger, actor=t["dm"], study_code=STUDY,
                        data=lock_schemas.LockIn(scope="study"))
        req = unlocks.request_unlock(s, ledger, actor=t["dm"], study_code=STUDY,
                                   data=lock_schemas.unlock_in_from_form(
                                       changes=S1, reason="r", planned_date="2026-12-01",
                                       period_hours="1"))
        for who, role in (("pi", Role.PRINCIPAL_INVESTIGATOR), ("dm", Role.DATA_MANAGER),
                          ("stat", Role.STATISTICIAN)):
            unlocks.sign_unlock(s, ledger, actor=t[who], study_code=STUDY, request_id=req.id,
                              role=role, username=who, password=PASSWORD, config=LOOSE_AUTH)
        rid = req.id
    capsys.readouterr()
    assert main(command) == 0
    if command[0] == "locks":
        assert capsys.readouterr().out.strip() == "re-locked 0 unlock(s)"
    with session_factory(engine)() as s:
        assert s.get(UnlockRequest, rid).status == "active"  # type: ignore[union-attr]
    with session_factory(engine)() as s, s.begin():
        s.execute(update(UnlockRequest).where(UnlockRequest.id == rid).values(
            ends_at=UnlockRequest.requested_at))
    if command[0] == "worker":  # a new interval: the next sweep is due
        monkeypatch.setenv("EDC_SWEEP_SECONDS", "86400")
    assert main(command) == 0
    if command[0] == "locks":
        assert capsys.readouterr().out.strip() == f"re-locked 1 unlock(s): {rid}"
    with session_factory(engine)() as s:
        assert s.get(UnlockRequest, rid).status == "relocked"  # type: ignore[union-attr]
    engine.dispose()
