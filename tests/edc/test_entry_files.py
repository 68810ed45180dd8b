"""File fields (REDCap's ``file`` type, here ``labs.lab_report``): upload with size and type
limits, stored outside the database under its SHA-256 (0600), the field's value the upload's
id, download by the roles that read the data, every upload and download audited."""

from __future__ import annotations

import hashlib
import stat
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import make_entry_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.settings import Settings
from studies.entry.models import EntryFile
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
FORM = f"/api/v1/studies/{STUDY}/entry/S01-ENT01/baseline/labs"
PAGE = f"/studies/{STUDY}/entry/S01-ENT01/baseline/labs"
PDF = b"%PDF-1.4\n% a lab report\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def study(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)
    make_user(session, ledger, "sponsor1", Role.SPONSOR, study=STUDY)


def api_upload(client: TestClient, item: str, name: str, content: bytes) -> Any:
    return client.post(FORM + f"/files/{item}", files={"file": (name, content, "x/y")},
                       headers={"X-CSRF-Token": client.cookies["edc_csrf"]})


def actions(session: Session, action: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(
        LedgerEntry.action == action)).scalars())


def test_upload_save_and_download_over_the_api(app_client: TestClient, session: Session,
                                               settings: Settings, study: None) -> None:
    login(app_client, "inv")
    r = api_upload(app_client, "lab_report", "report 1.pdf", PDF)
    assert r.status_code == 200, r.text
    up = r.json()
    digest = hashlib.sha256(PDF).hexdigest()
    assert (up["filename"], up["size"], up["media_type"], up["sha256"]) == (
        "report 1.pdf", len(PDF), "application/pdf", digest)
    blob = settings.upload_dir / digest[:2] / digest
    assert blob.read_bytes() == PDF and stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    r = app_client.put(FORM, json={"base_version": 0, "values": {"lab_report": up["id"]}})
    assert r.status_code == 200, r.text
    assert app_client.get(FORM).json()["values"]["lab_report"] == up["id"]
    login(app_client, "mon")  # monitors read the data: they may download
    got = app_client.get(f"/api/v1/studies/{STUDY}/files/{up['id']}")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert "attachment" in got.headers["content-disposition"]
    upload_entry, = actions(session, "entry.file.upload")
    assert (upload_entry.actor, upload_entry.subject) == ("inv", "S01-ENT01")
    assert digest in (upload_entry.changes or "")
    assert [e.actor for e in actions(session, "entry.file.download")] == ["mon"]
    login(app_client, "sponsor1")  # no patient-level data for the sponsor
    assert app_client.get(f"/api/v1/studies/{STUDY}/files/{up['id']}").status_code == 403


@pytest.mark.parametrize("name,content,message", [
    ("x.exe", b"MZ\x90\x00\x03\x00\x00\x00", "this type of file is not allowed"),
    ("notes.txt", b"plain text", "this type of file is not allowed"),  # not in the default set
    ("empty.pdf", b"", "the file is empty"),
    ("big.pdf", PDF + b"0" * 2000, "larger than 1000 bytes"),
])
def test_refused_uploads_name_the_field_and_store_nothing(
        app_client: TestClient, session: Session, settings: Settings, study: None,
        name: str, content: bytes, message: str) -> None:
    settings.upload_max_bytes = 1000
    login(app_client, "inv")
    r = api_upload(app_client, "lab_report", name, content)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "lab_report" and message in r.json()["error"]["message"]
    assert session.execute(select(EntryFile)).first() is None
    assert actions(session, "entry.file.upload") == []


def test_a_file_value_must_be_an_upload_for_that_field(app_client: TestClient,
                                                       study: None) -> None:
    login(app_client, "inv")
    r = app_client.put(FORM, json={"base_version": 0, "values": {"lab_report": "made-up"}})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"] == {
        "lab_report": 'not a file uploaded for this field'}
    r = api_upload(app_client, "hba1c", "a.pdf", PDF)
    assert r.status_code == 422 and r.json()["error"]["field"] == "hba1c"


def soup(r: Any) -> BeautifulSoup:
    return BeautifulSoup(r.text, "html.parser")


def _form_data(doc: BeautifulSoup) -> dict[str, str]:
    form = doc.select_one("form.entry")
    return {el["name"]: el.get("value", "") for el in form.select("input")
            if el.get("name") and el.get("type") not in ("file", "checkbox", "radio")}


def test_the_page_uploads_shows_and_replaces_a_file_with_a_reason(
        app_client: TestClient, session: Session, study: None) -> None:
    login(app_client, "inv")
    doc = soup(app_client.get(PAGE))
    form = doc.select_one("form.entry")
    assert form["enctype"] == "multipart/form-data"
    assert form.select_one("input[type=file][name='upload.lab_report']") is not None
    r = app_client.post(PAGE, data=_form_data(doc),
                        files={"upload.lab_report": ("scan.pdf", PDF, "application/pdf")},
                        follow_redirects=False)
    assert r.status_code == 303, r.text[-800:]
    doc = soup(app_client.get(PAGE))
    link = doc.select_one("#field-lab_report a.file")
    assert link.get_text().startswith("scan.pdf") and link["href"].startswith(
        f"/api/v1/studies/{STUDY}/files/")
    assert app_client.get(link["href"]).content == PDF
    # a wrong type: the error at the field, nothing saved
    r = app_client.post(PAGE, data=_form_data(doc),
                        files={"upload.lab_report": ("virus.exe", b"MZ\x90\x00", "x/y")})
    assert r.status_code == 422
    assert "not allowed" in soup(r).select_one("#field-lab_report .field-error").get_text()
    # a replacement is a change: the page asks for a reason at that field only
    r = app_client.post(PAGE, data=_form_data(doc),
                        files={"upload.lab_report": ("scan2.png", PNG, "image/png")})
    assert r.status_code == 422
    back = soup(r)
    shown = [d.find_parent(class_="field")["id"] for d in back.select(".reason:not([hidden])")]
    assert shown == ["field-lab_report"]
    assert back.select_one("#field-lab_report a.file").get_text().startswith("scan2.png")
    data = _form_data(back)  # the upload is kept: no need to choose the file again
    data["reason.lab_report"] = "transcription_error"
    r = app_client.post(PAGE, data=data, follow_redirects=False)
    assert r.status_code == 303, r.text[-800:]
    doc = soup(app_client.get(PAGE))
    assert doc.select_one("#field-lab_report a.file").get_text().startswith("scan2.png")


def test_an_import_cannot_put_text_in_a_file_field(app_client: TestClient, session: Session,
                                                   ledger: Ledger, study: None) -> None:
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
    login(app_client, "dm")
    csv_text = ("record_id,redcap_event_name,hba1c,lab_report\n"
                "S01-ENT01,baseline_arm_1,6.5,C:/scans/report.pdf\n")
    r = app_client.post(f"/api/v1/studies/{STUDY}/entry/import",
                        files={"file": ("data.csv", csv_text.encode(), "text/csv")},
                        headers={"X-CSRF-Token": app_client.cookies["edc_csrf"]})
    assert r.status_code == 422
    assert [(e["row"], e["column"], e["field"]) for e in r.json()["error"]["details"]["errors"]
            ] == [(2, 4, "lab_report")]
