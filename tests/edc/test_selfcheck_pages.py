"""The Appendix F self-check for the data security office: the page reached from the menu of
the security officer and the auditor (refused to others), and ``edc conformance report``, which
writes the report as HTML and PDF, each with a detached signature by the ledger's key that
``minisign`` verifies; every run is a ledger entry."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from factories import make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_cli import env  # noqa: F401  (the fixture: a fresh database and key directory)
from test_study_pages import soup
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.cli import main
from edc.db import make_engine, session_factory
from studies.kernel.events import Action
from studies.kernel.roles import Role


def test_the_security_officer_reaches_the_self_check_from_the_menu(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)
    make_user(session, ledger, "inv", Role.INVESTIGATOR)
    login(app_client, "inv")
    assert "/self-check" not in {a["href"] for a in soup(app_client.get("/").text)
                                 .select("nav a")}
    assert app_client.get("/self-check").status_code == 403

    login(app_client, "dso")
    home = soup(app_client.get("/").text)
    link = next(a for a in home.select("nav a") if a["href"] == "/self-check")
    assert link.text == 'Self-check (Appendix F)'
    page = soup(app_client.get(link["href"]).text)
    rows = {tr["id"]: tr for tr in page.select("table.selfcheck tbody tr")}
    assert set(rows) == {f"item-{k}" for k in ("ledger", "drill", "second_factor",
                                               "ended_accounts", "destruction",
                                               "cross_border", "retention", "extracts")}
    drill = rows["item-drill"]
    assert drill.select_one(".result").text == 'fail'
    assert "no restore drill recorded" in drill.text
    assert rows["item-second_factor"].select_one(".result").text == 'fail'
    assert "without: dso" in rows["item-second_factor"].text
    assert rows["item-extracts"].select_one(".result").text == 'not applicable'
    assert "edc conformance report" in page.text
    assert session.execute(select(LedgerEntry.actor).where(
        LedgerEntry.action == Action.OVERSIGHT_SELFCHECK)).scalars().all() == ["dso"]


@pytest.mark.usefixtures("env")
def test_the_report_command_writes_signed_html_and_pdf_and_is_audited(
        fresh_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edc import keyring

    sessions = session_factory(make_engine(fresh_url))
    led = Ledger(signer=keyring.load(tmp_path / "keys").signer)
    with sessions() as s, s.begin():
        make_user(s, led, "dso", Role.SECURITY_OFFICER)
        make_user(s, led, "inv", Role.INVESTIGATOR)
    capsys.readouterr()
    assert main(["conformance", "report", "--out", str(tmp_path / "r"), "--by", "inv"]) == 2
    assert "audit.verify" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()

    assert main(["conformance", "report", "--out", str(tmp_path / "selfcheck"),
                 "--by", "dso"]) == 0
    out = capsys.readouterr().out
    html, pdf = tmp_path / "selfcheck.html", tmp_path / "selfcheck.pdf"
    assert f"{html} (signature {html}.minisig)" in out
    text = html.read_text()
    assert "Appendix F" in text and "without: dso" in text
    assert "no restore drill recorded" in text
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert main(["keys", "export-signing-pub", "--out", str(tmp_path / "hospital.pub")]) == 0
    for f in (html, pdf):
        ok = subprocess.run(["minisign", "-Vm", str(f), "-p", str(tmp_path / "hospital.pub")],
                            capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert "Appendix F self-check" in ok.stdout and "by dso" in ok.stdout
    html.write_text(text.replace("no restore drill recorded", "restore drill recorded"))
    bad = subprocess.run(["minisign", "-Vm", str(html), "-p", str(tmp_path / "hospital.pub")],
                         capture_output=True, text=True)
    assert bad.returncode != 0
    with sessions() as s:
        assert s.execute(select(LedgerEntry.actor, LedgerEntry.client).where(
            LedgerEntry.action == Action.OVERSIGHT_SELFCHECK)).all() == [("dso", "cli")]
