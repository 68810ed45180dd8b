"""Signing extract decisions through the API and the pages (issue 14, items 5–6, 8–9): an
officer with a second factor approves a PUF; a signing mistake is a 422 on the same page with
the session kept; the data-use agreement is shown in full and bound; the first review, the
frozen roll, the committee's minimum size and the RIF's ethics rule, as a user meets them."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from bs4 import BeautifulSoup
from factories import (
    EXAMPLE_PHARMA,
    HOSPITAL_ORG,
    PASSWORD,
    affiliate,
    enrol_totp,
    make_extract_study,
    make_user,
)
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts.models import Signature
from studies.extracts import agreement
from studies.kernel.roles import Role

STUDY = "EXT-2026-01"

HAN = re.compile(r"[\u4e00-\u9fff]")


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def world(session: Session, ledger: Ledger, state: Any, tmp_path: Path) -> dict[str, Any]:
    made = make_extract_study(session, ledger, STUDY, n=3, identifiable=(0, 1, 2),
                              with_data=False)
    for name, role in (("sponsor1", Role.SPONSOR), ("ecm", Role.ETHICS_MEMBER),
                       ("dsc0", Role.COMMITTEE_MEMBER), ("dsc1", Role.COMMITTEE_MEMBER),
                       ("dsc2", Role.COMMITTEE_MEMBER), ("researcher1", Role.STATISTICIAN)):
        make_user(session, ledger, name, role)
    affiliate(session, ledger, "researcher1", HOSPITAL_ORG)  # a RIF stays in the hospital
    secrets = {}
    for name in ("dso", "dso2"):  # data security officers with a second factor
        secrets[name] = enrol_totp(session, make_user(session, ledger, name,
                                                      Role.SECURITY_OFFICER), state.auth)
    ident = tmp_path / "sponsor.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    return dict(made, pub=pub, secrets=secrets)


def api_login(client: TestClient, username: str, totp: str | None = None) -> None:
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD,
                                                "totp": totp})
    assert r.status_code == 200, r.text


def page_login(client: TestClient, username: str, totp: str | None = None) -> None:
    client.cookies.clear()
    r = client.post("/login", data={"username": username, "password": PASSWORD,
                                    "totp": totp or "", "csrf_token": csrf(client, "/login")},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text


def csrf(client: TestClient, url: str) -> str:
    soup = BeautifulSoup(client.get(url).text, "html.parser")
    return soup.find("input", {"name": "csrf_token"})["value"]  # type: ignore[index,return-value]


def codes(secret: str) -> tuple[str, str]:
    """A code for the login, and the next step's for the first signature (a step is never
    accepted twice)."""
    now = time.time()
    return pyotp.TOTP(secret).at(now), pyotp.TOTP(secret).at(now + 30)


def new_request(client: TestClient, w: dict[str, Any], tier: str = "puf",
                **kw: Any) -> Any:
    api_login(client, "researcher1" if tier == "rif" else "sponsor1")
    fields = ["identity.name", "labs.hba1c"] if tier == "rif" else ["labs.hba1c"]
    return client.post(f"/api/v1/studies/{STUDY}/extracts", json={
        "purpose": "Efficacy analysis by age band", "tier": tier, "fields": fields,
        "recipient_org": HOSPITAL_ORG if tier == "rif" else EXAMPLE_PHARMA,
        "recipient_key": w["pub"],
        "use_from": dt.date.today().isoformat(),
        "use_until": (dt.date.today() + dt.timedelta(days=90)).isoformat(), **kw})


def opened(client: TestClient, w: dict[str, Any], tier: str = "puf") -> str:
    r = new_request(client, w, tier)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_an_officer_with_a_second_factor_approves_a_puf_through_the_api(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    rid = opened(app_client, world)
    login_code, sign_code = codes(world["secrets"]["dso"])
    api_login(app_client, "dso", login_code)
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "officer", "username": "dso", "password": PASSWORD, "totp": sign_code})
    assert r.status_code == 201, r.text
    sig = session.get(Signature, r.json()["signature"])
    assert sig is not None and sig.username == "dso"
    assert sig.content_hash == r.json()["content_sha256"]
    detail = app_client.get(f"/api/v1/extracts/{rid}").json()
    assert detail["status"] == "approved"
    assert detail["decisions"][0]["signature"] == sig.id


def test_an_officer_with_a_second_factor_approves_a_puf_on_the_page(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    rid = opened(app_client, world)
    login_code, sign_code = codes(world["secrets"]["dso2"])
    page_login(app_client, "dso2", login_code)
    r = app_client.post(f"/extracts/{rid}/decisions", data={
        "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "officer", "approve": "1",
        "username": "dso2", "password": PASSWORD, "totp": sign_code}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = BeautifulSoup(app_client.get(f"/extracts/{rid}").text, "html.parser")
    assert page.select_one("dd.status").get_text() == 'approved'
    assert session.execute(select(Signature).where(Signature.entity_id == rid)).scalar_one()


@pytest.mark.parametrize(("field", "body"), [
    ("password", {"password": "wrong-password"}),
    ("totp", {"totp": "000000"}),
    ("username", {"username": "dsc0"}),
])
def test_a_signing_mistake_through_the_api_is_422_and_keeps_the_session(
        app_client: TestClient, session: Session, world: dict[str, Any], field: str,
        body: dict[str, str]) -> None:
    rid = opened(app_client, world)
    login_code, sign_code = codes(world["secrets"]["dso"])
    api_login(app_client, "dso", login_code)
    attempt = {"kind": "officer", "username": "dso", "password": PASSWORD, "totp": sign_code,
               **body}
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json=attempt)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("signature_refused", field)
    assert err["message"] and not HAN.search(err["message"])  # in the client's language
    assert app_client.get("/api/v1/me").status_code == 200  # the same cookie still works
    assert app_client.get(f"/api/v1/extracts/{rid}").json()["status"] == "pending"
    refusals = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "signature.sign", LedgerEntry.outcome == "failure")).scalars()
    assert len(list(refusals)) == 1  # audited


def test_a_wrong_password_on_the_page_is_shown_on_the_same_page_and_keeps_the_session(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    rid = opened(app_client, world)
    login_code, sign_code = codes(world["secrets"]["dso2"])
    page_login(app_client, "dso2", login_code)
    r = app_client.post(f"/extracts/{rid}/decisions", data={
        "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "officer", "approve": "1",
        "username": "dso2", "password": "wrong-password", "totp": sign_code},
        follow_redirects=False)
    assert r.status_code == 422
    page = BeautifulSoup(r.text, "html.parser")
    assert "wrong password" in page.select_one(".sign-error").get_text()
    assert "password" in page.select_one(".sign-error").get_text()
    assert page.find("form", {"action": f"/extracts/{rid}/decisions"}) is not None
    assert "edc_session" not in r.headers.get("set-cookie", "")  # not logged out
    again = app_client.get(f"/extracts/{rid}", follow_redirects=False)
    assert again.status_code == 200  # the same cookie still works
    refusal = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "signature.sign", LedgerEntry.outcome == "failure")).scalar_one()
    assert refusal.reason is not None and "wrong password" in refusal.reason
    r = app_client.post(f"/extracts/{rid}/decisions", data={
        "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "officer", "approve": "1",
        "username": "dso2", "password": PASSWORD, "totp": sign_code}, follow_redirects=False)
    assert r.status_code == 303, r.text  # and signing then works in the same session


def test_the_agreement_is_shown_in_full_and_its_hash_is_signed(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    rid = opened(app_client, world, "lds")
    r = app_client.get(f"/api/v1/extracts/{rid}/agreement")
    assert r.status_code == 200
    dua = r.json()
    assert dua["terms_sha256"] == agreement.terms_sha256() and dua["text"] == \
        agreement.terms_text()
    keys = {t["key"] for t in dua["terms"]}
    assert {"breach_notification", "protective_measures", "no_contact", "survival",
            "termination", "no_reidentification", "no_linkage", "no_onward_disclosure",
            "destruction", "purpose"} <= keys
    page = BeautifulSoup(app_client.get(f"/extracts/{rid}").text, "html.parser")
    assert page.select_one("pre.terms").get_text() == dua["text"]
    assert page.select_one("code.terms-hash").get_text() == dua["terms_sha256"]
    assert page.find("input", {"name": "terms_sha256"})["value"] == dua["terms_sha256"]
    r = app_client.post(f"/extracts/{rid}/decisions", data={
        "csrf_token": csrf(app_client, f"/extracts/{rid}"), "kind": "dua",
        "username": "sponsor1", "password": PASSWORD,
        "terms_sha256": dua["terms_sha256"]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    row = app_client.get(f"/api/v1/extracts/{rid}").json()["decisions"][0]
    assert (row["kind"], row["terms_sha256"]) == ("dua", dua["terms_sha256"])
    sig = session.get(Signature, row["signature"])
    assert sig is not None and sig.content_hash == dua["content_sha256"]
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "dua", "password": PASSWORD, "terms_sha256": "f" * 64})
    assert r.status_code == 409 and r.json()["error"]["field"] == "terms_sha256"


def test_first_review_and_the_frozen_roll_as_a_committee_member_meets_them(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    rid = opened(app_client, world, "lds")
    api_login(app_client, "dsc0")
    vote = {"kind": "vote", "username": "dsc0", "password": PASSWORD}
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json=vote)
    assert r.status_code == 422 and r.json()["error"]["clause"] == "§11.3.4.6"
    login_code, sign_code = codes(world["secrets"]["dso"])
    api_login(app_client, "dso", login_code)
    assert app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "officer", "username": "dso", "password": PASSWORD,
        "totp": sign_code}).status_code == 201
    make_user(session, ledger, "dsc_late", Role.COMMITTEE_MEMBER)
    api_login(app_client, "dsc_late")
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "vote", "username": "dsc_late", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["clause"] == "Appendix C"
    api_login(app_client, "dsc0")
    assert app_client.post(f"/api/v1/extracts/{rid}/decisions", json=vote).status_code == 201
    approvals = app_client.get(f"/api/v1/extracts/{rid}").json()["approvals"]
    assert (approvals["yes"], approvals["committee_members"], approvals["committee_min"]) == \
        (1, 3, 3)
    page = BeautifulSoup(app_client.get(f"/extracts/{rid}").text, "html.parser")
    assert "1 yes / 0 no of 3 on the roll frozen" in page.select_one("dd.approvals").get_text()


def test_a_committee_under_three_is_refused_at_the_request_on_api_and_page(
        app_client: TestClient, session: Session, ledger: Ledger,
        world: dict[str, Any]) -> None:
    from studies.accounts import admin
    from studies.kernel.actor import SYSTEM

    admin.set_active(session, ledger, actor=SYSTEM, username="dsc2", active=False)
    r = new_request(app_client, world, "lds")
    assert r.status_code == 422
    err = r.json()["error"]
    assert (err["field"], err["clause"]) == ("tier", "Appendix C")
    assert "at least 3 members" in err["message"]
    assert app_client.get("/api/v1/extracts").json() == []  # nothing written
    r = app_client.post(f"/studies/{STUDY}/extracts", data={
        "csrf_token": csrf(app_client, f"/studies/{STUDY}/extracts/new"),
        "purpose": "Efficacy analysis by age band", "tier": "lds", "fields": ["labs.hba1c"],
        "recipient_org": "example-pharma", "recipient_key": world["pub"],
        "use_from": dt.date.today().isoformat(),
        "use_until": (dt.date.today() + dt.timedelta(days=90)).isoformat()},
        follow_redirects=False)
    assert r.status_code == 422 and "at least 3 members" in r.text and "Appendix C" in r.text


def test_the_ethics_desk_records_identifiable_use_and_a_rif_needs_it(
        app_client: TestClient, session: Session, world: dict[str, Any]) -> None:
    rid = opened(app_client, world, "rif")
    login_code, sign_code = codes(world["secrets"]["dso"])
    api_login(app_client, "dso", login_code)
    assert app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "officer", "username": "dso", "password": PASSWORD,
        "totp": sign_code}).status_code == 201
    api_login(app_client, "ecm")
    page = BeautifulSoup(app_client.get("/ethics").text, "html.parser")
    assert page.find("input", {"name": "identifiable_use", "type": "checkbox"}) is not None
    base = {"protocol_version": 1, "committee_id": world["approval"].committee_id,
            "decision": "approved", "decided_on": dt.date.today().isoformat()}
    plain = app_client.post(f"/api/v1/studies/{STUDY}/approvals",
                            json={**base, "reference": "EC-plain"})
    assert plain.status_code == 201 and plain.json()["identifiable_use"] is False
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "ethics", "username": "ecm", "password": PASSWORD,
        "reference": plain.json()["id"]})
    assert r.status_code == 422
    assert (r.json()["error"]["field"], r.json()["error"]["clause"]) == ("reference",
                                                                         "§11.3.4.2")
    assert "identifiable use" in r.json()["error"]["message"]
    r = app_client.post(f"/ethics/studies/{STUDY}/approvals", data={
        "csrf_token": csrf(app_client, "/ethics"), "protocol_version": "1",
        "committee_id": world["approval"].committee_id, "decision": "approved",
        "reference": "EC-rif", "decided_on": dt.date.today().isoformat(),
        "identifiable_use": "on"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    desk = app_client.get("/api/v1/ethics").json()
    rif = next(a for st in desk["studies"] for a in st["approvals"]
               if a["reference"] == "EC-rif")
    assert rif["identifiable_use"] is True
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json={
        "kind": "ethics", "username": "ecm", "password": PASSWORD, "reference": rif["id"]})
    assert r.status_code == 201, r.text


def test_repeated_wrong_signing_passwords_are_limited_without_a_logout(
        app_client: TestClient, state: Any, world: dict[str, Any]) -> None:
    rid = opened(app_client, world)
    login_code, sign_code = codes(world["secrets"]["dso"])
    api_login(app_client, "dso", login_code)
    attempt = {"kind": "officer", "username": "dso", "password": "wrong-password",
               "totp": sign_code}
    for _ in range(state.auth.lockout_threshold):
        r = app_client.post(f"/api/v1/extracts/{rid}/decisions", json=attempt)
        assert r.status_code == 422 and r.json()["error"]["field"] == "password"
    r = app_client.post(f"/api/v1/extracts/{rid}/decisions",
                        json={**attempt, "password": PASSWORD})
    assert r.status_code == 429 and "too many refused signatures" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) > 0
    assert app_client.get("/api/v1/me").status_code == 200  # still logged in
    assert app_client.get(f"/api/v1/extracts/{rid}").json()["status"] == "pending"
