"""Every role reaches its work from the home page by following links (parsed HTML, GET only),
the menu offers only what the role may open, error pages keep the menu, and codes on pages
are labelled."""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from factories import VITALS, make_entry_study, make_lock_team, make_user
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from edc.web.labels import LABELS
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
S = f"/studies/{STUDY}"
FORM = f"{S}/entry/S01-ENT01/baseline/vital_signs"

# What each role must reach by clicking, starting at "/" (the work the issue lists).
JOURNEYS: dict[str, tuple[str, ...]] = {
    "inv": (f"{S}/entry", f"{S}/subjects", f"{S}/subjects/enrol", FORM, f"{S}/dashboard"),
    "mon": (f"{S}/monitor", f"{S}/entry", FORM, f"{S}/consent", f"{S}/dashboard"),
    "dm": (f"{S}/locks", f"{S}/exports", "/extracts", f"{S}/dashboard",
           f"/api/v1/studies/{STUDY}/export/odm",
           f"/api/v1/studies/{STUDY}/export/forms/vital_signs.csv"),
    "pi": (f"{S}/entry", f"{S}/locks", f"{S}/subjects/enrol", f"{S}/exports"),
    "stat": (f"{S}/locks", f"{S}/randomisation", f"{S}/extracts/new", "/extracts"),
    "sponsor": ("/extracts", f"{S}/extracts/new"),
    "committee": ("/extracts",),
    "custodian": ("/code-index", "/code-index/history"),
    "auditor": ("/audit", "/audit/entries"),
    "admin": ("/admin/accounts",),
}


@pytest.fixture
def everyone(session: Session, ledger: Ledger) -> dict[str, Any]:
    make_entry_study(session, ledger)
    team = make_lock_team(session, ledger, STUDY)
    make_user(session, ledger, "sponsor", Role.SPONSOR, study=STUDY)
    make_user(session, ledger, "committee", Role.COMMITTEE_MEMBER)
    make_user(session, ledger, "custodian", Role.CUSTODIAN)
    make_user(session, ledger, "auditor", Role.AUDITOR)
    make_user(session, ledger, "admin", Role.ADMIN)
    entry.save_form(session, ledger, actor=team["inv"], study_code=STUDY,
                    subject_code="S01-ENT01", event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    return team


def walk(client: TestClient, depth: int = 2) -> dict[str, int]:
    """Follow every same-site link (GET) breadth-first from "/": each URL and its status.
    API downloads are noted (as linked) but not fetched."""
    seen: dict[str, int] = {}
    todo: deque[tuple[str, int]] = deque([("/", 0)])
    while todo:
        url, level = todo.popleft()
        if url in seen:
            continue
        if url.startswith("/api/"):
            seen[url] = 0
            continue
        r = client.get(url, follow_redirects=False)
        seen[url] = r.status_code
        if level >= depth or "text/html" not in r.headers.get("content-type", ""):
            continue
        for a in soup(r.text).select("a[href]"):
            href = urldefrag(str(a["href"]))[0]
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not href.startswith("/"):
                continue
            if href.startswith(("/static/", "/audit/export", "/extracts/")) and level:
                continue
            todo.append((href, level + 1))
    return seen


@pytest.mark.parametrize("who", list(JOURNEYS))
def test_each_role_reaches_its_work_from_the_home_page_by_clicking(
        app_client: TestClient, everyone: dict[str, Any], who: str) -> None:
    login(app_client, who)
    reached = walk(app_client)
    missing = [u for u in JOURNEYS[who] if u not in reached]
    assert missing == [], f"{who} cannot click through to {missing}"
    refused = {u: code for u, code in reached.items() if code not in (0, 200)}
    assert refused == {}, f"the menu of {who} offers pages that refuse: {refused}"


def test_the_menu_shows_only_what_the_role_may_do(app_client: TestClient,
                                                  everyone: dict[str, Any]) -> None:
    login(app_client, "sponsor")
    home = soup(app_client.get("/").text)
    hrefs = {a["href"] for a in home.select("header nav a")}
    assert "/extracts" in hrefs
    assert not hrefs & {"/audit", "/code-index", "/admin/accounts", f"{S}/entry"}
    work = {a["href"] for a in home.select("section.work a")}
    assert f"{S}/extracts/new" in work and f"{S}/entry" not in work
    login(app_client, "mon")
    grid = soup(app_client.get(f"{S}/entry").text)
    study_menu = {a["href"] for a in grid.select("nav.study-menu a")}
    assert f"{S}/monitor" in study_menu and f"{S}/locks" in study_menu
    assert f"{S}/subjects/enrol" not in study_menu and f"{S}/exports" not in study_menu
    crumbs = [a.get_text() for a in grid.select("nav.breadcrumbs a")]
    assert crumbs == ["首页 / Home", "研究 / Studies", STUDY]


def test_error_pages_keep_the_menu(app_client: TestClient, everyone: dict[str, Any]) -> None:
    login(app_client, "inv")
    for url, status in ((f"{S}/locks/report", 403), (f"{S}/entry/S01-ENT01/baseline/nope", 404)):
        r = app_client.get(url)
        assert r.status_code == status, url
        page = soup(r.text)
        assert page.select_one("header nav.menu a[href='/']") is not None, url
        assert page.select_one("main .error[role=alert]") is not None
        assert page.select_one("form[action='/logout']") is not None


def test_codes_shown_on_pages_are_labelled(app_client: TestClient,
                                           everyone: dict[str, Any]) -> None:
    login(app_client, "pi")
    studies = soup(app_client.get("/studies").text)
    status = studies.select("tbody td")[2].get_text()
    assert status in LABELS.values() and " / " in status
    forms = soup(app_client.get(S).text).select("table")[-1].select("tbody td:nth-of-type(3)")
    assert forms and all(td.get_text() in ("草稿 / draft", "已发布 / published") for td in forms)
