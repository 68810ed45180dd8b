"""A subject's requests through the pages (§7 f correction, §7 h restriction): the custodian
records the request in the subject's words on the code-index page; the study team at the
subject's site sees it by subject code in *Subjects' requests*; a correction closes only after
the data were changed the normal way with a reason naming the request, a restriction by
withdrawing consent scopes against it; the PI may decline with a note; each step audited."""

from __future__ import annotations

from factories import PASSWORD, SETUP, consent_to, enrol_subject, make_entry_study, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_study_pages import csrf, soup
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.keyring import Keyring
from studies.accounts.service import actor_for
from studies.consent.models import ConsentWithdrawal
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.actor import Actor
from studies.kernel.roles import Role
from studies.registry.models import Site
from studies.subjects.models import Subject, SubjectRequest

S = "REQ-2026"
LIST = f"/studies/{S}/subject-requests"
VALUES = {"dob": "1970-03-15", "sex": "2", "ethnicity": "1", "pregnant": "0"}


def record(client: TestClient, code: str, kind: str, text: str) -> object:
    return client.post("/code-index/requests", data={
        "csrf_token": csrf(client, "/code-index"), "code": code, "kind": kind, "text": text,
        "reason": "the subject's letter of 1 December"}, follow_redirects=False)


def actions(session: Session) -> list[tuple[str, str]]:
    return [(a, r or "") for a, r in session.execute(
        select(LedgerEntry.action, LedgerEntry.reason).where(
            LedgerEntry.action.like("subject.request_%")).order_by(LedgerEntry.seq)).all()]


def team(session: Session, ledger: Ledger, keys: Keyring) -> tuple[Subject, Actor]:
    """The study with its investigator, PI and custodian, and one subject enrolled by the
    investigator (consented to use in the study and future de-identified research)."""
    made = make_entry_study(session, ledger, S, subjects=())
    site = session.execute(select(Site).where(Site.study_id == made["study"].id)).scalar_one()
    inv = actor_for(session, make_user(session, ledger, "inv", Role.INVESTIGATOR, study=S),
                    client="test")
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR, study=S)
    make_user(session, ledger, "cust", Role.CUSTODIAN)
    subj = enrol_subject(session, ledger, keys.code_index_keys(), actor=inv,
                         study=made["study"], site=site, n=4,
                         consent=consent_to(session, made["study"],
                                            scopes=("study", "deidentified_future")))
    return subj, inv


def test_correction_and_restriction_requests_are_routed_and_resolved(
        app_client: TestClient, session: Session, ledger: Ledger, keys: Keyring) -> None:
    subj, inv = team(session, ledger, keys)
    entry.save_form(session, ledger, actor=SETUP, study_code=S, subject_code=subj.code,
                    event_name="baseline", form_name="demographics",
                    data=SaveIn(base_version=0, values=VALUES))

    login(app_client, "cust")
    assert soup(app_client.get("/code-index").text).select_one("form#subject-request")
    r = record(app_client, subj.code, "correction", "   ")
    assert r.status_code == 422 and "text" in r.text
    r = record(app_client, subj.code, "correction",
               "My date of birth is 16 March 1970, not the 15th")
    assert r.status_code == 303
    corr = session.execute(select(SubjectRequest)).scalar_one()
    assert corr.reference.startswith("SR-") and corr.status == "open"

    login(app_client, "inv")
    home = soup(app_client.get(f"/studies/{S}/entry").text)
    assert any(a["href"] == LIST for a in home.select("nav a"))
    page = soup(app_client.get(LIST).text)
    item = page.select_one(f"#request-{corr.reference}")
    assert item.select_one(".subject").text.startswith(subj.code)
    assert item.select_one(".text").text == "My date of birth is 16 March 1970, not the 15th"
    assert item.select_one("form.decline") is None  # declining is the PI's
    resolve = item.select_one("form.resolve")["action"]
    r = app_client.post(resolve, data={"csrf_token": csrf(app_client, LIST),
                                       "note": "corrected"}, follow_redirects=False)
    assert r.status_code == 409 and corr.reference in r.text  # not corrected on the form yet

    entry.save_form(session, ledger, actor=inv, study_code=S, subject_code=subj.code,
                    event_name="baseline", form_name="demographics",
                    data=SaveIn(base_version=1, values={**VALUES, "dob": "1970-03-16"},
                                reasons={"dob": f"{corr.reference}: the subject's birth "
                                                "certificate"}))
    r = app_client.post(resolve, data={"csrf_token": csrf(app_client, LIST),
                                       "note": "date of birth corrected from the certificate"},
                        follow_redirects=False)
    assert r.status_code == 303
    closed = soup(app_client.get(LIST).text).select("table.closed tbody tr")
    assert [td.text for td in closed[0].find_all("td")][:5] == [
        corr.reference, subj.code, 'Correction or completion', "resolved",
        "date of birth corrected from the certificate"]

    login(app_client, "cust")
    assert record(app_client, subj.code, "restriction",
                  "Do not use my data for any future research").status_code == 303
    assert record(app_client, subj.code, "restriction",
                  "Do not tell my employer").status_code == 303
    restr, other = session.execute(select(SubjectRequest).where(
        SubjectRequest.kind == "restriction").order_by(SubjectRequest.created_at)
    ).scalars().all()
    login(app_client, "inv")
    base = f"{LIST}/{restr.id}"
    r = app_client.post(f"{base}/resolve", data={"csrf_token": csrf(app_client, LIST),
                                                 "note": "agreed"})
    assert r.status_code == 422 and "scopes" in r.text
    r = app_client.post(f"{base}/resolve", data={
        "csrf_token": csrf(app_client, LIST), "scopes": "deidentified_future",
        "note": "agreed: no future research use"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    w = session.execute(select(ConsentWithdrawal).where(
        ConsentWithdrawal.subject_id == subj.id)).scalar_one()
    assert w.scope == "deidentified_future"
    assert w.reason == f"{restr.reference}: agreed: no future research use"
    assert app_client.post(f"{LIST}/{other.id}/decline", data={
        "csrf_token": csrf(app_client, LIST), "note": "x"}).status_code == 403

    login(app_client, "pi")
    r = app_client.post(f"{LIST}/{other.id}/decline", data={
        "csrf_token": csrf(app_client, LIST),
        "note": "the study does not disclose to employers"}, follow_redirects=False)
    assert r.status_code == 303
    assert soup(app_client.get(LIST).text).select_one(".none") is not None  # nothing open
    assert [a for a, _ in actions(session)] == [
        "subject.request_record", "subject.request_resolve", "subject.request_record",
        "subject.request_record", "subject.request_resolve", "subject.request_decline"]
    assert actions(session)[1][1] == (f"{corr.reference}: date of birth corrected from the "
                                      "certificate")
    first_resolve = session.execute(select(LedgerEntry.changes).where(
        LedgerEntry.action == "subject.request_resolve").order_by(LedgerEntry.seq)
    ).scalars().first()
    assert "dob v2" in str(first_resolve)  # the audited change that made the correction


def test_the_api_records_lists_and_declines_a_request(
        app_client: TestClient, session: Session, ledger: Ledger, keys: Keyring) -> None:
    subj, _inv = team(session, ledger, keys)

    def api_login(username: str) -> None:
        app_client.cookies.clear()
        r = app_client.post("/api/v1/auth/login", json={"username": username,
                                                         "password": PASSWORD})
        assert r.status_code == 200, r.text

    api_login("cust")
    r = app_client.post("/api/v1/code-index/requests", json={
        "code": subj.code, "kind": "restriction", "text": "", "reason": "letter of 1 Dec"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"
    r = app_client.post("/api/v1/code-index/requests", json={
        "code": subj.code, "kind": "restriction", "text": "Not to my insurer",
        "reason": "letter of 1 Dec"})
    assert r.status_code == 201
    ref, rid = r.json()["reference"], r.json()["id"]
    api_login("inv")
    listed = app_client.get(f"/api/v1/studies/{S}/subject-requests").json()
    assert [(x["reference"], x["subject_code"], x["text"], x["status"]) for x in listed] == [
        (ref, subj.code, "Not to my insurer", "open")]
    api_login("pi")
    r = app_client.post(f"/api/v1/studies/{S}/subject-requests/{rid}/decline",
                        json={"note": "the study discloses nothing to insurers"})
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert r.json()["resolution"] == "the study discloses nothing to insurers"
