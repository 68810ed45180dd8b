"""Extract pages and API: a sponsor requests, the committee signs, the data manager builds,
the named recipient downloads a package that the sponsor-side command opens (issue 9)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import PASSWORD, make_extract_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc import cli
from studies.extracts import build as builder
from studies.extracts import package as pkg
from studies.kernel.roles import Role

STUDY = "EXT-2026-01"


pytestmark = pytest.mark.usefixtures("fast_password_hashing")



def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    page = client.get("/login")
    token = BeautifulSoup(page.text, "html.parser").find("input", {"name": "csrf_token"})["value"]
    r = client.post("/login", data={"username": username, "password": PASSWORD,
                                    "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text


def csrf(client: TestClient, url: str) -> str:
    soup = BeautifulSoup(client.get(url).text, "html.parser")
    return soup.find("input", {"name": "csrf_token"})["value"]  # type: ignore[index,return-value]


def test_request_approve_build_download_and_receive(
        app_client: TestClient, session: Session, ledger: Ledger, state: Any,
        tmp_path: Path, monkeypatch: Any) -> None:
    state.settings.extract_dir = tmp_path / "extracts"
    make_extract_study(session, ledger, STUDY, n=12)
    for name, role in (("sponsor1", Role.SPONSOR), ("dm", Role.DATA_MANAGER),
                       ("sponsor2", Role.SPONSOR), ("dso", Role.SECURITY_OFFICER)) + tuple(
            (f"dsc{i}", Role.COMMITTEE_MEMBER) for i in range(3)):
        make_user(session, ledger, name, role)
    ident = tmp_path / "sponsor.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    login(app_client, "sponsor1")
    form = BeautifulSoup(app_client.get(f"/studies/{STUDY}/extracts/new").text, "html.parser")
    labels = {i["value"]: i.find_parent("label").get_text() for i in
              form.find_all("input", {"name": "fields"})}
    assert "quasi-identifier" in labels["demographics.dob"]
    assert "sensitive" in labels["labs.hbsag"]
    r = app_client.post(f"/studies/{STUDY}/extracts", data={
        "csrf_token": csrf(app_client, f"/studies/{STUDY}/extracts/new"),
        "purpose": "Efficacy analysis by age band", "tier": "lds",
        "fields": ["demographics.ethnicity", "labs.hba1c"], "recipient_org": "example-pharma",
        "recipient_key": pub, "use_from": dt.date.today().isoformat(),
        "use_until": (dt.date.today() + dt.timedelta(days=90)).isoformat()},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    rid = r.headers["location"].rsplit("/", 1)[1]
    bad = app_client.post(f"/api/v1/studies/{STUDY}/extracts", json={
        "purpose": "x" * 20, "tier": "lds", "fields": ["labs.hba1c"], "recipient_org": "P",
        "recipient_key": "age1bad", "use_from": "2026-01-01", "use_until": "2099-01-01"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "recipient_key"
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "dua", "username": "sponsor1", "password": PASSWORD})
    assert r.status_code == 201, r.text
    login(app_client, "dso")  # the data security office's first review (初审)
    r = app_client.post(f"/extracts/{rid}/decisions", data={
        "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "officer", "approve": "1",
        "username": "dso", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    for i in range(3):
        login(app_client, f"dsc{i}")
        if i == 2:  # a signing mistake is shown on a page and keeps the session
            r = app_client.post(f"/extracts/{rid}/decisions", data={
                "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "vote",
                "approve": "1", "username": "dsc2", "password": "not my password"},
                follow_redirects=False)
            assert r.status_code == 422  # the signing mistake at its field
            assert "wrong password" in BeautifulSoup(r.text, "html.parser").select_one(
                ".sign-error").get_text()
            assert app_client.get("/", follow_redirects=False).status_code == 200
        r = app_client.post(f"/extracts/{rid}/decisions", data={
            "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "vote", "approve": "1",
            "username": f"dsc{i}", "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303, r.text
    login(app_client, "dm")
    page = BeautifulSoup(app_client.get(f"/extracts/{rid}").text, "html.parser")
    assert page.select_one("dd.status").get_text() == 'approved'
    assert page.select_one("section h2") is not None  # the applicant's history is shown
    r = app_client.post(f"/api/v1/extracts/{rid}/build", json={})
    assert r.status_code == 202 and r.json()["build"] == "queued"
    builder.build(session, ledger, request_id=rid, out_dir=state.settings.extract_dir,
                  keys=builder.BuildKeys(deid_key=state.keys.deid_key,
                                         signing_key=state.keys.signing_key,
                                         code_index=state.keys.code_index_keys()))
    detail = app_client.get(f"/api/v1/extracts/{rid}").json()
    assert detail["build"]["progress"] == 100
    login(app_client, "sponsor2")
    assert app_client.get(f"/api/v1/extracts/{rid}/package").status_code == 403
    login(app_client, "sponsor1")
    r = app_client.get(f"/api/v1/extracts/{rid}/package")
    assert detail["build"]["state"] == "done" and detail["build"]["checks"]["passed"]
    assert r.status_code == 200
    package = tmp_path / "p.age"
    package.write_bytes(r.content)
    signer = tmp_path / "hospital.pub"
    signer.write_text(pkg.public_key_text(state.keys.signing_key))
    assert cli.main(["receive", str(package), "--identity", str(ident), "--signer",
                     str(signer), "--out", str(tmp_path / "got")]) == 0
    assert (tmp_path / "got/manifest.json").exists()
    package.write_bytes(r.content[:-1] + bytes([r.content[-1] ^ 1]))
    assert cli.main(["receive", str(package), "--identity", str(ident), "--signer",
                     str(signer), "--out", str(tmp_path / "got2")]) == 2
    custody = app_client.get(f"/api/v1/extracts/{rid}").json()["transfers"]
    assert [t["event"] for t in custody][-1] == "downloaded"


def test_demo_makes_one_sponsor_request_and_is_safe_twice(
        session: Session, ledger: Ledger, state: Any, tmp_path: Path) -> None:
    from edc import demo

    state.settings.extract_dir = tmp_path / "extracts"
    make_extract_study(session, ledger, demo.DEMO_STUDY, n=3, with_data=False)
    make_user(session, ledger, "demo.sponsor", Role.SPONSOR)
    for username, _, role in demo.demo_accounts():
        if role is Role.COMMITTEE_MEMBER:  # the demo's committee: three members (Appendix C)
            make_user(session, ledger, username, role)
    first = demo.load_extract_request(session, state)
    second = demo.load_extract_request(session, state)
    assert "(LDS, pending the data security office's first review, then the committee)" in \
        first[0] and second == first  # same line twice
    assert first[0].split()[3] == second[0].split()[3]  # the same request
    # the tour: the first review, the committee's three votes and the agreement approve it
    from studies.accounts import service as accounts
    from studies.extracts import review
    from studies.extracts.schemas import DecisionIn

    make_user(session, ledger, "demo.security_officer", Role.SECURITY_OFFICER)
    rid = first[0].split()[3].rsplit("/", 1)[1]
    signers = [("demo.security_officer", "officer")] + [
        (u, "vote") for u, _, r in demo.demo_accounts() if r is Role.COMMITTEE_MEMBER] + [
        ("demo.sponsor", "dua")]
    for username, kind in signers:
        _, actor = accounts.login(session, ledger, username=username, password=PASSWORD,
                                  client="10.0.0.9", config=state.auth)
        d = review.decide(session, ledger, actor=actor, request_id=rid, data=DecisionIn(
            kind=kind, username=username, password=PASSWORD), config=state.auth)
    assert review.get_request(session, rid).status == "approved" and d.kind == "dua"
    assert (tmp_path / "extracts/demo-sponsor.key").stat().st_mode & 0o777 == 0o600
