"""htmx for real (issue 18, item 7), as parsed HTML: the eCRF's live check (a field's error
from the save's own checks, calculated values and branching as typed, nothing written), an
SDV tick and a query answer answered with only their row / thread, extract progress as a
polled fragment — and each still a plain form post or page without JavaScript."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import (
    PASSWORD,
    VITALS,
    age_keys,
    login_as,
    make_entry_study,
    make_extract_study,
    make_lock_team,
    make_user,
    security_committee,
)
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.entry import monitoring
from studies.entry import service as entry
from studies.entry.models import FormRecord
from studies.entry.schemas import QueryOpenIn, SaveIn
from studies.extracts import service as ex
from studies.extracts.schemas import RequestIn
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
PAGE = f"/studies/{STUDY}/entry/S01-ENT01/baseline/vital_signs"
HX = {"HX-Request": "true"}


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Any]:
    make_entry_study(session, ledger)
    return make_lock_team(session, ledger, STUDY)


def token(page: BeautifulSoup) -> str:
    return str(page.find("input", {"name": "csrf_token"})["value"])


def count(session: Session, table: Any) -> int:
    return session.execute(select(func.count()).select_from(table)).scalar_one()


def check(client: TestClient, field: str, values: dict[str, Any]) -> BeautifulSoup:
    """What htmx posts as ``field`` is typed: the whole form, from ``div#field-<field>``."""
    page = soup(client.get(PAGE).text)
    div = page.select_one(f"div#field-{field}")
    assert div["hx-post"] == f"{PAGE}/check" and div["hx-swap"] == "none"
    assert div["hx-sync"] == "closest form:queue last"  # in order: the newest answer is last
    r = client.post(div["hx-post"], data={"csrf_token": token(page), **values},
                    headers={**HX, "HX-Trigger": f"field-{field}"})
    assert r.status_code == 200, r.text
    return soup(r.text)


def test_typing_shows_the_save_error_at_the_field_computes_and_branches_writing_nothing(
        app_client: TestClient, session: Session, ledger: Ledger,
        team: dict[str, Any]) -> None:
    login(app_client, "inv")
    page = soup(app_client.get(PAGE).text)
    # the page starts with the stored state: no smoker answer, so "cigarettes" hidden
    assert page.select_one("#field-cigs_per_day > .branch-hidden") is not None
    assert page.select_one("#field-sbp > .branch-hidden") is None
    assert page.select_one("noscript link[href='/static/noscript.css']") is not None
    before = count(session, LedgerEntry)
    frag = check(app_client, "weight", {"height": "175", "weight": "70.0", "sbp": "999",
                                        "smoker": "1"})
    err = frag.select_one("#err-weight")
    assert err["hx-swap-oob"] == "true" and err.select_one(".field-error") is None
    assert frag.select_one("output#f-bmi").get_text() == "22.9"
    assert "branch-shown" in frag.select_one("#show-cigs_per_day")["class"]
    assert frag.select_one("#err-sbp") is None  # only the field being typed is judged
    frag = check(app_client, "sbp", {"height": "175", "weight": "70.0", "sbp": "999",
                                     "smoker": "0"})
    shown = frag.select_one("#err-sbp .field-error").get_text()
    assert "branch-hidden" in frag.select_one("#show-cigs_per_day")["class"]
    # the save refuses with the very message the page showed while typing
    r = app_client.post(PAGE, data={"csrf_token": token(page), "base_version": "0",
                                    **{**VITALS, "sbp": "999"}}, follow_redirects=False)
    assert r.status_code == 422
    assert soup(r.text).select_one("#field-sbp .field-error").get_text() == shown
    frag = check(app_client, "height", {"height": "", "weight": "70.0"})
    assert frag.select_one("#err-height .field-error").get_text() == 'required'
    assert frag.select_one("output#f-bmi").get_text() == "—"
    assert count(session, LedgerEntry) == before and count(session, FormRecord) == 0


def test_a_save_refused_without_javascript_shows_the_fields_its_typed_values_branch_to(
        app_client: TestClient, team: dict[str, Any]) -> None:
    login(app_client, "inv")
    page = soup(app_client.get(PAGE).text)
    r = app_client.post(PAGE, data={"csrf_token": token(page), "base_version": "0",
                                    **{**VITALS, "smoker": "1"}}, follow_redirects=False)
    assert r.status_code == 422
    doc = soup(r.text)
    assert doc.select_one("#field-cigs_per_day > .branch-shown") is not None
    assert doc.select_one("#field-cigs_per_day .field-error").get_text() == 'required'


@pytest.fixture
def saved(session: Session, ledger: Ledger, team: dict[str, Any]) -> dict[str, Any]:
    """The team, and S01-ENT01's vital signs saved by the investigator."""
    entry.save_form(session, ledger, actor=team["inv"], study_code=STUDY,
                    subject_code="S01-ENT01", event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    return team


def test_an_sdv_tick_under_htmx_answers_its_row_and_without_it_redirects(
        app_client: TestClient, saved: dict[str, Any]) -> None:
    login(app_client, "mon")
    page = soup(app_client.get(PAGE).text)
    form = page.select_one("#sdv-row-sbp form")
    assert form["method"] == "post" and form["hx-post"] == form["action"]
    assert form["hx-target"] == "#sdv-row-sbp" and form["hx-swap"] == "outerHTML"
    data = {"csrf_token": token(page), "repeat": "1", "item": "sbp"}
    r = app_client.post(form["hx-post"], data=data, headers=HX)
    assert r.status_code == 200
    frag = soup(r.text)
    row = frag.select_one("tr#sdv-row-sbp")
    assert 'SDV by mon' in row.select_one(".sdv-state").get_text()
    assert frag.select_one("span#sdv-sbp[hx-swap-oob]").get_text().startswith("✓")
    assert frag.select_one("html, header, nav") is None  # a fragment, not a page
    r = app_client.post(form["action"], data={**data, "item": "height"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == PAGE
    doc = soup(app_client.get(PAGE).text)
    assert "SDV by" in doc.select_one("#sdv-row-height .sdv-state").get_text()


def test_a_query_answer_under_htmx_answers_its_thread_and_a_refusal_its_errors(
        app_client: TestClient, session: Session, ledger: Ledger,
        saved: dict[str, Any]) -> None:
    q = monitoring.open_query(session, ledger, actor=saved["mon"], study_code=STUDY,
                              data=QueryOpenIn(subject="S01-ENT01", event="baseline",
                                               form="vital_signs", item="sbp",
                                               text="Source shows 128"))
    login(app_client, "inv")
    page = soup(app_client.get(PAGE).text)
    form = page.select_one(f"#query-{q.id} form[action$='/answer']")
    assert form["hx-target"] == f"#query-{q.id}" and form["hx-swap"] == "outerHTML"
    before = count(session, LedgerEntry)
    r = app_client.post(form["hx-post"], headers=HX, data={
        "csrf_token": token(page), "text": "Corrected", "change_value": "1",
        "value": "not a number"})
    assert r.status_code == 422
    frag = soup(r.text)
    assert frag.select_one("header") is None
    art = frag.select_one(f"article#query-{q.id}")
    assert art.select_one("form .field-error") is not None
    assert art.select_one("textarea[name=text]").get_text() == "Corrected"
    assert count(session, LedgerEntry) == before
    r = app_client.post(form["hx-post"], headers=HX, data={
        "csrf_token": token(page), "text": "Source checked: 120 is right"})
    assert r.status_code == 200
    art = soup(r.text).select_one(f"article#query-{q.id}")
    assert art.select_one(".query-status").get_text() == 'answered'
    assert "Source checked: 120 is right" in art.select_one(".thread").get_text()
    assert art.select_one(".flash").get_text() == 'answered'
    assert count(session, LedgerEntry) == before + 1


def test_extract_progress_is_a_polled_fragment_until_the_build_ends(
        app_client: TestClient, session: Session, ledger: Ledger, tmp_path: Any) -> None:
    make_extract_study(session, ledger, "EXT-2026-01", n=3, with_data=False)
    security_committee(session, ledger)
    make_user(session, ledger, "sponsor1", Role.SPONSOR)
    sponsor = login_as(session, ledger, "sponsor2", Role.SPONSOR, study="EXT-2026-01")
    _, pub = age_keys(tmp_path)
    today = dt.date.today()
    req = ex.create_request(session, ledger, actor=sponsor, study_code="EXT-2026-01",
                            data=RequestIn(purpose="Efficacy by age", tier="lds",
                                           fields=["labs.hba1c"], recipient_org="example-pharma",
                                           recipient_key=pub, use_from=today,
                                           use_until=today + dt.timedelta(days=90)))
    req.build_state, req.progress = "running", 40  # as the builder leaves it
    session.flush()
    login(app_client, "sponsor2")
    doc = soup(app_client.get(f"/extracts/{req.id}").text)
    dd = doc.select_one("dd#build-progress")
    assert dd["hx-get"] == f"/extracts/{req.id}/progress" and dd["hx-trigger"] == "every 2s"
    assert 'running 40%' in dd.get_text()
    assert doc.select_one("noscript meta[http-equiv=refresh]")["content"] == "3"
    req.progress = 75
    session.flush()
    r = app_client.get(dd["hx-get"], headers=HX)
    frag = soup(r.text)
    assert "running 75%" in frag.get_text() and frag.select_one("progress")["value"] == "75"
    assert frag.select_one("dd")["hx-trigger"] == "every 2s" and "HX-Refresh" not in r.headers
    req.build_state, req.progress = "done", 100
    session.flush()
    r = app_client.get(dd["hx-get"], headers=HX)
    assert r.headers["HX-Refresh"] == "true"  # the page reloads to offer what is now done
    assert soup(r.text).select_one("dd").get("hx-trigger") is None
    doc = soup(app_client.get(f"/extracts/{req.id}").text)
    assert doc.select_one("noscript meta[http-equiv=refresh]") is None
    login(app_client, "sponsor1")  # someone else's request: refused, as the page is
    assert app_client.get(dd["hx-get"], headers=HX).status_code == 403


def test_htmx_is_configured_to_show_refusals_and_add_no_inline_style(
        app_client: TestClient, team: dict[str, Any]) -> None:
    import json

    login(app_client, "inv")
    doc = soup(app_client.get("/").text)
    config = json.loads(doc.select_one("meta[name=htmx-config]")["content"])
    assert config["includeIndicatorStyles"] is False  # app.css styles the indicators
    swapped = {r["code"]: r["swap"] for r in config["responseHandling"]}
    assert swapped["[234].."] is True and swapped["204"] is False  # a 422 fragment is shown
    # a refusal under htmx goes to the message area of the page, not into the target
    r = app_client.get("/studies/NOPE-2026-01/entry", headers=HX)
    assert r.status_code in (403, 404)
    assert r.headers["HX-Retarget"] == "#messages" and r.headers["HX-Reswap"] == "innerHTML"
    assert soup(r.text).select_one(".error-fragment .error") is not None


def test_the_live_check_keeps_to_the_site_of_the_grant(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    from studies.accounts import service as accounts
    from studies.kernel.actor import SYSTEM

    make_entry_study(session, ledger, subjects=("S01-ENT01", "S02-ENT02"), sites=("S01", "S02"))
    accounts.create_user(session, ledger, actor=SYSTEM, username="inv2", display_name="Inv 2",
                         password=PASSWORD, roles=[(Role.INVESTIGATOR, STUDY, "S02")],
                         must_change_password=False)
    login(app_client, "inv2")
    own = f"/studies/{STUDY}/entry/S02-ENT02/baseline/vital_signs"
    page = soup(app_client.get(own).text)
    data = {"csrf_token": token(page), "height": "175", "weight": "70.0"}
    r = app_client.post(f"{own}/check", data=data, headers={**HX, "HX-Trigger": "field-height"})
    assert soup(r.text).select_one("output#f-bmi").get_text() == "22.9"
    r = app_client.post(f"{PAGE}/check", data=data, headers={**HX, "HX-Trigger": "field-height"})
    assert r.status_code == 403 and soup(r.text).select_one("output") is None
