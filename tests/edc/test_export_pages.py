"""Exports in the pages (issue 18 item 8, issue 19 item 3, issue 20 item 7): from the study's
menu the statistician reaches the export page, asks for an export (a mistake comes back at its
field, input kept), the PI signs the approval on the approvals page (a signing mistake on the
same page, the session kept), then every download the page links works — CSV with a BOM,
SPSS / Stata / SAS files that pyreadstat opens with their labels, the R script, ODM — each
audited with the approval; roles outside the export team get no page. REDCap-shaped tokens
are issued from the account page, shown once, revocable and audited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from factories import DEMOGRAPHICS, PASSWORD, SETUP, VITALS, make_entry_study, make_user
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_study_pages import csrf

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts.models import ApiToken
from studies.entry import service as entry
from studies.entry.models import ExportRequest
from studies.entry.schemas import SaveIn
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
SUBJECT = "S01-ENT01"
PAGE = f"/studies/{STUDY}/exports"


@pytest.fixture
def team(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    for form, values in (("demographics", DEMOGRAPHICS),
                         ("vital_signs", {**VITALS, "symptoms": ["1", "3"]})):
        entry.save_form(session, ledger, actor=SETUP, study_code=STUDY, subject_code=SUBJECT,
                        event_name="baseline", form_name=form,
                        data=SaveIn(base_version=0, values=values))
    for name, role in (("stat", Role.STATISTICIAN), ("pi", Role.PRINCIPAL_INVESTIGATOR),
                       ("mon", Role.MONITOR), ("sp", Role.SPONSOR)):
        make_user(session, ledger, name, role, study=STUDY)
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)


def _exports(session: Session) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "entry.export").order_by(LedgerEntry.seq)).scalars())


def _request(client: TestClient, **fields: Any) -> Any:
    return client.post(f"/studies/{STUDY}/export-requests",
                       data={"csrf_token": csrf(client, PAGE), **fields},
                       follow_redirects=False)


def test_the_statistician_requests_the_pi_approves_and_every_download_opens(
        app_client: TestClient, session: Session, ledger: Ledger, team: None,
        tmp_path: Path) -> None:
    login(app_client, "stat")
    study_page = soup(app_client.get(f"/studies/{STUDY}").text)
    assert study_page.find("a", href=PAGE) is not None  # reached from the study's menu
    page = soup(app_client.get(PAGE).text)
    assert "none" in page.select_one("#current-approval")["class"]
    whole = {a.text: a["href"] for a in page.select("#whole-study a")}
    sav = whole["SPSS .sav"]
    refused = app_client.get(sav)
    assert refused.status_code == 403 and "§11.3.4.1 c" in refused.text  # not approved yet

    r = _request(app_client, forms="vital_signs", purpose="  ", valid_days="30")
    assert r.status_code == 422  # at the field, what was typed kept
    doc = soup(r.text)
    assert "say what the export is for" in doc.select_one("#error-purpose").text
    assert doc.find("input", {"name": "forms", "value": "vital_signs"}).has_attr("checked")
    assert session.execute(select(ExportRequest)).first() is None  # nothing written
    r = _request(app_client, purpose="primary analysis", valid_days="30")
    assert r.status_code == 303
    row = soup(app_client.get(PAGE).text).select_one("#export-requests tr.export-request")
    assert 'pending' in row.select_one(".status").text
    assert 'whole study' in row.select_one(".scope").text
    assert row.find("form") is None  # the requester does not decide

    login(app_client, "pi")
    home = soup(app_client.get("/").text)
    assert home.find("a", href="/export-approvals") is not None
    waits = home.select_one("ul.waiting-exports").text  # the home page tells the approver
    assert '· stat · all' in waits
    approvals = soup(app_client.get("/export-approvals").text)
    form = approvals.select_one("form.export-decision")
    assert form is not None
    body = {"csrf_token": csrf(app_client, "/export-approvals"), "decision": "approve",
            "back": "/export-approvals", "username": "pi", "password": "wrong password!"}
    r = app_client.post(form["action"], data=body, follow_redirects=False)
    assert r.status_code == 422
    assert 'wrong password' in soup(r.text).select_one(".sign-error").text
    assert app_client.get("/export-approvals").status_code == 200  # the session is kept
    r = app_client.post(form["action"], data={**body, "password": PASSWORD},
                        follow_redirects=False)
    assert r.status_code == 303
    approved = session.execute(select(ExportRequest)).scalar_one()
    assert approved.status == "approved" and approved.decided_by == "pi"

    login(app_client, "stat")
    page = soup(app_client.get(PAGE).text)
    assert "none" not in (page.select_one("#current-approval").get("class") or [])
    assert 'approved' in page.select_one("#export-requests .status").text
    assert "pi" in page.select_one("#export-requests .signature").text
    links = {a.text: a["href"] for a in page.select("#whole-study a")}
    got = {}
    for text, href in links.items():
        r = app_client.get(href)
        assert r.status_code == 200, (text, r.text)
        got[text] = r
    csv = got["CSV (codes)"].content
    assert csv.startswith(b"\xef\xbb\xbf") and b"weight" in csv and b"dob" not in csv
    assert "Fever" not in csv.decode("utf-8-sig")  # codes
    assert b"Checked" in got["CSV (labels)"].content
    for text, reader in (("SPSS .sav", pyreadstat.read_sav), ("Stata .dta", pyreadstat.read_dta),
                         ("SAS .xpt", pyreadstat.read_xport)):
        path = tmp_path / re.sub(r"\W", "_", text)
        path.write_bytes(got[text].content)
        df, meta = reader(str(path), output_format="polars")
        assert df["weight"].to_list() == [70.0]
        assert "sex" not in df.columns  # quasi-identifiers were not approved raw
        if text == "SAS .xpt":
            assert meta.column_names_to_labels["weight"] == "Weight (kg)"
        else:
            assert meta.column_names_to_labels["weight"] == "体重 / Weight (kg)"
            assert meta.variable_value_labels["symptoms___1"] == {0: "Unchecked", 1: "Checked"}
    assert 'attr(data[["weight"]], "label")' in got["R script"].text
    assert b"<ClinicalData" in next(r.content for t, r in got.items() if "ODM" in t)
    per_form = page.select("#per-form tbody tr")
    assert [tr.td.text for tr in per_form] == ["demographics", "vital_signs", "labs"]
    form_csv = app_client.get(per_form[1].find("a", string="CSV (Excel)")["href"])
    assert form_csv.status_code == 200 and form_csv.content.startswith(b"\xef\xbb\xbf")
    audited = [e for e in _exports(session) if e.actor == "stat"]
    assert len(audited) == len(links) + 1
    assert all(approved.id in (e.changes or "") for e in audited)


def test_raw_quasi_identifiers_wait_for_the_data_security_officer(
        app_client: TestClient, session: Session, ledger: Ledger, team: None,
        tmp_path: Path) -> None:
    login(app_client, "stat")
    assert _request(app_client, forms="demographics", raw_quasi_identifiers="on",
                    purpose="age distribution", valid_days="7").status_code == 303
    login(app_client, "pi")  # the PI may not approve raw quasi-identifiers: nothing waits
    assert soup(app_client.get("/export-approvals").text).select_one(
        "form.export-decision") is None
    assert 'Nothing waits' in soup(app_client.get("/").text).select_one(
        "ul.waiting-exports").text
    login(app_client, "dso")
    page = soup(app_client.get("/export-approvals").text)
    assert 'raw quasi-identifiers' in page.select_one(".qi").text
    form = page.select_one("form.export-decision")
    token = csrf(app_client, "/export-approvals")
    r = app_client.post(form["action"], data={
        "csrf_token": token, "decision": "reject", "note": "", "back": "/export-approvals",
        "username": "dso", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 422 and "say why the export is rejected" in r.text
    r = app_client.post(form["action"], data={
        "csrf_token": token, "decision": "approve", "back": "/export-approvals",
        "username": "dso", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    login(app_client, "stat")
    r = app_client.get(f"/api/v1/studies/{STUDY}/export/statistics/sav",
                       params={"form": "demographics"})
    assert r.status_code == 200
    (tmp_path / "d.sav").write_bytes(r.content)
    df, meta = pyreadstat.read_sav(str(tmp_path / "d.sav"), output_format="polars")
    assert df["dob"].to_list() == ["1980-05-01"] and df["sex"].to_list() == [1.0]
    assert meta.variable_value_labels["sex"] == {1: "男 / Male", 2: "女 / Female"}
    assert "patient_name" not in df.columns
    # the scope is one form: the whole study stays refused
    assert app_client.get(f"/api/v1/studies/{STUDY}/export/odm").status_code == 403


def test_roles_outside_the_export_team_get_no_export_page(
        app_client: TestClient, team: None) -> None:
    for who in ("mon", "sp"):
        login(app_client, who)
        assert app_client.get(PAGE).status_code == 403
        assert f'href="{PAGE}"' not in app_client.get(f"/studies/{STUDY}").text
        assert app_client.get(f"/api/v1/studies/{STUDY}/export/odm").status_code == 403
        assert app_client.get("/export-approvals").status_code == 403


def test_a_redcap_token_from_the_account_page_is_shown_once_and_revocable(
        app_client: TestClient, session: Session, team: None) -> None:
    login(app_client, "stat")
    account = soup(app_client.get("/account").text)
    assert account.find("input", {"name": "redcap", "type": "checkbox"}) is not None
    r = app_client.post("/account/tokens", data={
        "csrf_token": csrf(app_client, "/account"), "name": "pycap", "role": "statistician",
        "study": STUDY, "days": "30", "redcap": "on"})
    assert r.status_code == 200
    token = soup(r.text).select_one("pre.secret").text
    assert re.fullmatch(r"[0-9A-F]{32}", token)  # REDCap's shape, which PyCap requires
    assert token not in app_client.get("/account").text  # shown once
    row = session.execute(select(ApiToken).where(ApiToken.name == "pycap")).scalar_one()
    created = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "token.create", LedgerEntry.entity_id == row.id)).scalar_one()
    assert '"redcap"' in (created.changes or "")
    # the token works on the REDCap API; revoked from the page, it no longer does
    assert app_client.post("/api/", data={"token": token, "content": "version"}).text == "14.5.0"
    revoke = soup(app_client.get("/account").text).find(
        "form", action=f"/account/tokens/{row.id}/revoke")
    assert app_client.post(revoke["action"], data={
        "csrf_token": csrf(app_client, "/account")}).status_code == 200
    r = app_client.post("/api/", data={"token": token, "content": "version"})
    assert r.status_code == 401
    assert session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "token.revoke", LedgerEntry.entity_id == row.id)).first()
