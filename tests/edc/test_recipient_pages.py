"""Recipient organisations through the API, the pages and the CLI, as the administrator, a
sponsor and the data security officer use them (issue 14 items 5 and 7: §11.3.4.6, §7 p)."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import (
    EXAMPLE_PHARMA,
    HOSPITAL_ORG,
    PASSWORD,
    affiliate,
    make_extract_study,
    make_user,
    security_committee,
)
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.cli import main
from studies.extracts.models import ExtractRequest
from studies.kernel.roles import Role

STUDY = "EXT-2026-01"
TODAY = dt.date.today()


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


def csrf(client: TestClient, url: str) -> str:
    soup = BeautifulSoup(client.get(url).text, "html.parser")
    return soup.find("input", {"name": "csrf_token"})["value"]  # type: ignore[index,return-value]


def age_pub(tmp: Path) -> str:
    ident = tmp / "recipient.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    return next(line.split(": ", 1)[1] for line in ident.read_text().splitlines()
                if line.startswith("# public key:"))


def body(pub: str, **kw: Any) -> dict[str, Any]:
    return {"purpose": "Efficacy analysis by age band", "tier": "lds",
            "fields": ["labs.hba1c"], "recipient_org": EXAMPLE_PHARMA, "recipient_key": pub,
            "use_from": TODAY.isoformat(),
            "use_until": (TODAY + dt.timedelta(days=90)).isoformat()} | kw


def requests_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(ExtractRequest)).scalar_one()


@pytest.fixture
def world(session: Session, ledger: Ledger, tmp_path: Path) -> dict[str, Any]:
    make_extract_study(session, ledger, STUDY, n=3, identifiable=(0, 1, 2), cross_border=(1, 2),
                       with_data=False)
    security_committee(session, ledger)
    for name, role in (("admin1", Role.ADMIN), ("sponsor1", Role.SPONSOR),
                       ("researcher1", Role.STATISTICIAN), ("dso", Role.SECURITY_OFFICER)):
        make_user(session, ledger, name, role)
    affiliate(session, ledger, "sponsor1", EXAMPLE_PHARMA)
    affiliate(session, ledger, "researcher1", HOSPITAL_ORG)
    return {"pub": age_pub(tmp_path)}


def test_the_administrator_registers_organisations_and_affiliates_accounts(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    login(app_client, "admin1")
    r = app_client.post("/api/v1/admin/organisations", json={
        "code": "us-cro", "name_zh": "美国研究机构", "name_en": "US CRO",
        "kind": "institution", "country": "US"})
    assert r.status_code == 201, r.text
    assert r.json()["abroad"] is True and r.json()["country_label"] == 'United States'
    bad = app_client.post("/api/v1/admin/organisations", json={
        "code": "x-org", "name_zh": "某", "name_en": "X", "kind": "company", "country": "ZZ"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "country"
    again = app_client.post("/api/v1/admin/organisations", json={
        "code": "self2", "name_zh": "本院二", "name_en": "Self 2", "kind": "hospital",
        "country": "CN"})
    assert again.status_code == 409 and again.json()["error"]["field"] == "kind"
    r = app_client.post("/api/v1/admin/accounts/affiliate",
                        json={"username": "researcher1", "organisation": "us-cro"})
    assert r.status_code == 200, r.text
    listed = {o["code"]: o for o in app_client.get("/api/v1/organisations").json()}
    assert listed["us-cro"]["members"] == ["researcher1"]
    # the page: register with the form, see the list with kinds, countries and accounts
    r = app_client.post("/admin/organisations", data={
        "csrf_token": csrf(app_client, "/admin/organisations"), "code": "nmpa",
        "name_zh": "国家药监局", "name_en": "NMPA", "kind": "government", "country": "CN"},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    r = app_client.post("/admin/organisations/affiliate", data={
        "csrf_token": csrf(app_client, "/admin/organisations"), "username": "researcher1",
        "organisation": HOSPITAL_ORG}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = BeautifulSoup(app_client.get("/admin/organisations").text, "html.parser")
    assert page.select_one('nav a[href="/admin/organisations"]') is not None
    rows = {tr.find("td").get_text(): [td.get_text() for td in tr.find_all("td")]
            for tr in page.select("table.organisations tbody tr")}
    assert 'Government or regulator' in rows["nmpa"]
    assert "researcher1" in rows[HOSPITAL_ORG][-1] and rows["us-cro"][-1] == "—"
    assert {"organisation.register", "account.affiliate"} <= {e.action for e in session.execute(
        select(LedgerEntry).where(LedgerEntry.actor == "admin1")).scalars()}
    # a sponsor sees the organisations, not who belongs to them
    login(app_client, "sponsor1")
    assert all(o["members"] is None for o in app_client.get("/api/v1/organisations").json())
    assert app_client.post("/api/v1/admin/organisations", json={
        "code": "mine", "name_zh": "我的", "name_en": "Mine", "kind": "company",
        "country": "CN"}).status_code == 403


def test_a_company_rif_is_403_naming_the_clause_on_the_api_and_the_page(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    login(app_client, "sponsor1")
    before = requests_count(session)
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts", json=body(
        world["pub"], tier="rif", fields=["identity.name", "labs.hba1c"]))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["clause"] == "§11.3.4.6"
    r = app_client.post(f"/studies/{STUDY}/extracts", data=body(
        world["pub"], tier="rif", fields=["identity.name", "labs.hba1c"],
        recipient_org=HOSPITAL_ORG) | {
        "csrf_token": csrf(app_client, f"/studies/{STUDY}/extracts/new")},
        follow_redirects=False)
    assert r.status_code == 403 and "§11.3.4.6" in r.text
    assert requests_count(session) == before
    assert app_client.get("/api/v1/extracts").json() == []
    denied = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "access.denied", LedgerEntry.actor == "sponsor1")).scalars().all()
    assert len(denied) == 2 and all("§11.3.4.6" in (e.reason or "") for e in denied)
    # the hospital's own researcher may have one, through the same form
    login(app_client, "researcher1")
    form = BeautifulSoup(app_client.get(f"/studies/{STUDY}/extracts/new").text, "html.parser")
    choices = {o["value"] for o in form.select("select#recipient_org option")}
    assert {HOSPITAL_ORG, EXAMPLE_PHARMA} <= choices
    assert form.find("input", {"name": "cross_border"}) is None  # no self-declared tick box
    r = app_client.post(f"/studies/{STUDY}/extracts", data=body(
        world["pub"], tier="rif", fields=["identity.name", "labs.hba1c"],
        recipient_org=HOSPITAL_ORG) | {
        "csrf_token": csrf(app_client, f"/studies/{STUDY}/extracts/new")},
        follow_redirects=False)
    assert r.status_code == 303, r.text


def test_an_unknown_organisation_and_a_contradicting_cross_border_are_422(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    login(app_client, "sponsor1")
    before = requests_count(session)
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts",
                        json=body(world["pub"], recipient_org="Example Pharma"))
    assert r.status_code == 422 and r.json()["error"]["field"] == "recipient_org"
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts",
                        json=body(world["pub"], cross_border=True))
    assert r.status_code == 422 and r.json()["error"]["field"] == "cross_border"
    assert "registered country" in r.json()["error"]["message"]
    assert requests_count(session) == before
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts", json=body(world["pub"]))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["recipient_org"] == "示例药企 / Example Pharma" and out["cross_border"] is False
    assert out["recipient"]["code"] == EXAMPLE_PHARMA and out["recipient"]["country"] == "CN"


def test_the_officer_records_an_authority_approval_and_the_running_total_is_shown(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    login(app_client, "admin1")
    assert app_client.post("/api/v1/admin/organisations", json={
        "code": "us-pharma", "name_zh": "美国药企", "name_en": "US Pharma", "kind": "company",
        "country": "US"}).status_code == 201
    make_user(session, ledger, "us1", Role.SPONSOR)
    affiliate(session, ledger, "us1", "us-pharma")
    login(app_client, "us1")
    r = app_client.post(f"/api/v1/studies/{STUDY}/extracts",
                        json=body(world["pub"], tier="puf", recipient_org="us-pharma"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["cross_border"] is True and r.json()["persons"] == 2
    assert r.json()["recipient"]["cross_border_total"] == 2
    assert r.json()["recipient"]["cross_border_limit"] == 250
    page = BeautifulSoup(app_client.get(f"/extracts/{rid}").text, "html.parser")
    shown = page.select_one("dd.cross-border").get_text()
    assert "US" in shown and "2 / 250" in shown
    # the officer: the totals page, then an approval by the API and one by the page
    login(app_client, "dso")
    overview = BeautifulSoup(app_client.get("/cross-border").text, "html.parser")
    assert overview.select_one('nav a[href="/cross-border"]') is not None
    totals = {tr.find("td").get_text(): tr.select_one("td.total").get_text()
              for tr in overview.select("table.cross-border tbody tr")}
    assert totals["us-pharma"] == "2" and totals[EXAMPLE_PHARMA] == "0"
    doc = b"%PDF-1.7 the authority's approval"
    r = app_client.post("/api/v1/organisations/us-pharma/cross-border-approvals",
                        data={"reference": "CAC-2026-0007", "approved_on": TODAY.isoformat()},
                        files={"document": ("approval.pdf", doc, "application/pdf")},
                        headers={"X-CSRF-Token": app_client.cookies["edc_csrf"]})
    assert r.status_code == 201, r.text
    assert r.json()["document_sha256"] == hashlib.sha256(doc).hexdigest()
    bad = app_client.post("/api/v1/organisations/us-pharma/cross-border-approvals",
                          data={"reference": "CAC-2026-0008",
                                "approved_on": (TODAY + dt.timedelta(days=3)).isoformat()},
                          files={"document": ("a.pdf", doc, "application/pdf")},
                          headers={"X-CSRF-Token": app_client.cookies["edc_csrf"]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "approved_on"
    r = app_client.post("/cross-border/us-pharma", data={
        "csrf_token": csrf(app_client, "/cross-border/us-pharma"), "reference": "CAC-2026-0009",
        "approved_on": TODAY.isoformat()},
        files={"document": ("second.pdf", b"second", "application/pdf")},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    assert app_client.get("/api/v1/organisations/nope/cross-border-approvals"
                          ).status_code == 404
    listed = app_client.get("/api/v1/organisations/us-pharma/cross-border-approvals").json()
    assert [a["reference"] for a in listed] == ["CAC-2026-0007", "CAC-2026-0009"]
    entries = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "extract.cross_border_approval")).scalars().all()
    assert [e.actor for e in entries] == ["dso", "dso"]
    assert hashlib.sha256(doc).hexdigest() in (entries[0].changes or "")
    detail = app_client.get(f"/api/v1/extracts/{rid}").json()
    assert detail["recipient"]["cross_border_limit"] is None
    assert detail["recipient"]["authority_approval"] == "CAC-2026-0009"
    # nobody else records one
    login(app_client, "us1")
    assert app_client.post("/api/v1/organisations/us-pharma/cross-border-approvals",
                           data={"reference": "SELF-1", "approved_on": TODAY.isoformat()},
                           files={"document": ("a.pdf", doc, "application/pdf")}
                           ).status_code == 403


def test_the_cli_registers_lists_and_affiliates(
        monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from edc import keyring
    from edc.db import make_engine, session_factory

    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(tmp_path / "keys"))
    assert main(["init"]) == 0
    engine = make_engine(fresh_url)
    keys = keyring.load(tmp_path / "keys")
    with session_factory(engine)() as session, session.begin():
        make_user(session, Ledger(signer=keys.signer), "admin1", Role.ADMIN)
        make_user(session, Ledger(signer=keys.signer), "sponsor1", Role.SPONSOR)
    engine.dispose()
    capsys.readouterr()
    assert main(["accounts", "org-add", "demo-pharma", "--name-zh", "示例制药", "--name-en",
                 "Demo Pharma", "--kind", "company", "--country", "CN", "--by", "admin1"]) == 0
    assert main(["accounts", "affiliate", "sponsor1", "demo-pharma", "--by", "admin1"]) == 0
    assert main(["accounts", "orgs"]) == 0
    out = capsys.readouterr().out
    assert "demo-pharma: registered (示例制药 / Demo Pharma)" in out
    assert "demo-pharma\tcompany\tCN\t示例制药 / Demo Pharma\tsponsor1" in out
    assert main(["accounts", "org-add", "bad", "--name-zh", "坏", "--name-en", "Bad",
                 "--kind", "company", "--country", "XX", "--by", "admin1"]) != 0
    err = capsys.readouterr().err
    assert "country" in err and "Traceback" not in err


def test_the_demo_registers_the_hospital_and_its_sponsor_company(
        session: Session, ledger: Ledger, state: Any, tmp_path: Path) -> None:
    from factories import make_entry_study, publish_all

    from edc import demo
    from studies.accounts import organisations as orgs

    state.settings.extract_dir = tmp_path / "extracts"
    make_entry_study(session, ledger, demo.DEMO_STUDY, subjects=("S01-D0001",),
                     allow_incomplete=True)
    publish_all(session, ledger, demo.DEMO_STUDY)
    security_committee(session, ledger)
    sponsor = make_user(session, ledger, "demo.sponsor", Role.SPONSOR)
    first = demo.load_extract_request(session, state)
    assert demo.load_extract_request(session, state) == first  # safe twice
    hospital = orgs.hospital(session)
    assert hospital is not None and (hospital.code, hospital.country) == ("demo-hospital", "CN")
    pharma = orgs.find_organisation(session, "demo-pharma")
    assert (pharma.kind, pharma.country) == ("company", "CN")
    assert orgs.organisation_of(session, sponsor.id) is pharma
    req = session.execute(select(ExtractRequest).where(ExtractRequest.tier == "lds")
                          ).scalar_one()
    assert req.recipient_org_id == pharma.id and req.cross_border is False
    assert req.recipient_org == "示例制药 / Demo Pharma"
