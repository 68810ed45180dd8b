"""Status at a glance, local time, charts, exports and assets, as the pages show them: the
grid's icon per form (saved is never "verified"), a locked form read-only, times in the
display zone to the minute, the progress charts with their numbers, the export page's CSV
with a BOM, htmx cached under a content hash and configured for the CSP, /api/v1/docs
served locally."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from factories import VITALS, make_entry_study, make_lock_team
from fastapi.testclient import TestClient
from in_test_session import use_test_session
from pages_util import ENGLISH, login, soup
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc.app import create_app
from edc.settings import Settings
from edc.state import AppState
from edc.web import timefmt
from studies.entry import monitoring
from studies.entry import service as entry
from studies.entry.schemas import QueryOpenIn, SaveIn, SdvIn
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks

STUDY = "ENT-2026-01"
S = f"/studies/{STUDY}"
SUBJECTS = ("S01-ENT01", "S01-ENT02", "S01-ENT03", "S01-ENT04")


def save(session: Session, ledger: Ledger, team: dict[str, Any], subject: str) -> None:
    entry.save_form(session, ledger, actor=team["inv"], study_code=STUDY, subject_code=subject,
                    event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Any]:
    """Four subjects' vital signs: saved; verified; with an open query; not started."""
    make_entry_study(session, ledger, subjects=SUBJECTS)
    t = make_lock_team(session, ledger, STUDY)
    for code in SUBJECTS[:3]:
        save(session, ledger, t, code)
    monitoring.verify(session, ledger, actor=t["mon"], study_code=STUDY,
                      data=SdvIn(subject=SUBJECTS[1], event="baseline", form="vital_signs"))
    monitoring.open_query(session, ledger, actor=t["mon"], study_code=STUDY, data=QueryOpenIn(
        subject=SUBJECTS[2], event="baseline", form="vital_signs", item="sbp", text="check"),
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
    return t


def vitals_cell(grid: BeautifulSoup, subject: str) -> str:
    link = grid.select_one(f"a[href='{S}/entry/{subject}/baseline/vital_signs']")
    return " ".join(c for c in link["class"] if c.startswith("st-"))


def test_the_grid_tells_saved_verified_query_and_not_started_apart_with_a_legend(
        app_client: TestClient, team: dict[str, Any]) -> None:
    login(app_client, "mon")
    grid = soup(app_client.get(f"{S}/entry").text)
    assert [vitals_cell(grid, s) for s in SUBJECTS] == [
        "st-complete", "st-verified", "st-query", "st-new"]
    legend = grid.select_one("ul.legend").get_text(" ")
    for words in ("not started", "saved complete, not verified", "verified (SDV)", "open query",
                  "locked (read-only)"):
        assert words in legend


def test_a_locked_form_opens_read_only_and_shows_locked_in_the_grid(
        app_client: TestClient, session: Session, ledger: Ledger,
        team: dict[str, Any]) -> None:
    locks.set_locks(session, ledger, actor=team["dm"], study_code=STUDY,
                    data=lock_schemas.lock_in_from_form(
                        scope="subjects", sites="", forms="", subjects=SUBJECTS[0],
                        override_reason="interim analysis cut-off"))
    login(app_client, "inv")
    grid = soup(app_client.get(f"{S}/entry").text)
    assert vitals_cell(grid, SUBJECTS[0]) == "st-locked"
    assert vitals_cell(grid, SUBJECTS[1]) != "st-locked"
    page = soup(app_client.get(f"{S}/entry/{SUBJECTS[0]}/baseline/vital_signs").text)
    assert page.select_one(".locked-note") is not None
    assert page.select_one("form.entry") is None and page.select_one("input[name=sbp]") is None
    assert page.select_one("#f-sbp").get_text() == "120"
    open_page = soup(app_client.get(f"{S}/entry/{SUBJECTS[1]}/baseline/vital_signs").text)
    assert open_page.select_one("form.entry input[name=sbp]") is not None


def test_times_are_shown_in_the_display_zone_to_the_minute(
        app_client: TestClient, team: dict[str, Any]) -> None:
    login(app_client, "inv")
    rows = soup(app_client.get(f"{S}/subjects").text).select("table.subjects tbody tr")
    shown = rows[0].select("td")[3].get_text()
    assert shown.endswith("(UTC+8)") and "." not in shown and len(shown) == len(
        "2026-05-01 16:30 (UTC+8)")
    assert timefmt.local_minute(dt.datetime(2026, 5, 1, 8, 30, 59, 123456, tzinfo=dt.UTC)) \
        == "2026-05-01 16:30 (UTC+8)"
    timefmt.set_zone("Europe/Berlin")
    try:
        assert timefmt.local_minute("2026-01-10T08:30:00+00:00") == "2026-01-10 09:30 (UTC+1)"
    finally:
        timefmt.set_zone("Asia/Shanghai")


def test_the_dashboard_charts_enrolment_sdv_and_query_age_with_their_numbers(
        app_client: TestClient, team: dict[str, Any]) -> None:
    login(app_client, "dm")
    page = soup(app_client.get(f"{S}/dashboard").text)
    assert page.select("#chart-enrolment rect")  # drawn by the server, no script
    assert page.select_one("script:not([src])") is None
    forms = page.select("figure.chart")[1].select("table.chart-data tbody tr")
    vitals = next(r for r in forms if r.th.get_text() == "vital_signs")
    # columns: incomplete, complete, verified, query, locked, total
    assert [td.get_text() for td in vitals.select("td")] == ["0", "1", "1", "1", "0", "3"]
    ages = page.select("figure.chart")[2].select("table.chart-data tbody tr")
    assert {r.th.get_text(): r.select("td")[0].get_text() for r in ages} == {
        "0–7": "0", "8–14": "1", "15–30": "0", ">30": "0"}


def test_htmx_is_cached_under_its_hash_and_configured_for_the_csp(
        app_client: TestClient, team: dict[str, Any]) -> None:
    login(app_client, "inv")
    page = app_client.get("/")
    assert page.headers["cache-control"] == "no-store"
    doc = soup(page.text)
    src = doc.select_one("script[src*=htmx]")["src"]
    assert src.startswith("/static/htmx-") and src != "/static/htmx.min.js"
    js = app_client.get(src)
    assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
    assert "max-age=31536000" in js.headers["cache-control"]
    assert "includeIndicatorStyles" in doc.select_one("meta[name=htmx-config]")["content"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]


def test_the_api_reference_is_served_from_the_server(app_client: TestClient) -> None:
    r = app_client.get("/api/v1/docs")
    assert r.status_code == 200
    doc = soup(r.text)
    srcs = [s["src"] for s in doc.select("script[src]")]
    css = doc.select_one("link[rel=stylesheet]")["href"]
    assert all(u.startswith("/static/swagger-") for u in [*srcs, css])
    assert doc.select_one("script:not([src])") is None  # nothing the CSP would refuse
    for url in [*srcs, css]:
        got = app_client.get(url)
        assert got.status_code == 200 and len(got.content) > 100, url


def test_htmx_is_served_when_the_server_starts_outside_the_checkout(
        state: AppState, session: Session, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """An operator who starts ``edc serve`` from another folder gets the real htmx, not the
    'not installed' placeholder (the assets default to the checkout's node_modules)."""
    monkeypatch.chdir(tmp_path)
    app = create_app(dataclasses.replace(state, settings=Settings(
        database_url=state.settings.database_url, key_dir=state.settings.key_dir,
        environment="test", second_factor_enforced=False)))
    use_test_session(app, session)
    with TestClient(app, base_url="http://testserver", headers=ENGLISH) as c:
        js = c.get("/static/htmx.min.js")
        assert js.status_code == 200
        assert "not installed" not in js.text and "htmx" in js.text and len(js.content) > 10_000
        assert Settings().assets_dir.is_absolute()
