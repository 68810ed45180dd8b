"""Every role reaches its work from the home page by following links (parsed HTML, GET only),
the menu offers only what the role may open, error pages keep the menu, and codes on pages
are labelled."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pages_util import login, soup, walk

from edc.web.labels import LABELS
from studies.kernel import i18n

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
    assert crumbs == ['Home', 'Studies', STUDY]


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
    assert status in LABELS.values()
    forms = soup(app_client.get(S).text).select("table")[-1].select("tbody td:nth-of-type(3)")
    assert forms and all(td.get_text() in ("draft", "published") for td in forms)
    # in Chinese the codes are words, not the English code
    zh = {"Accept-Language": "zh"}
    status = soup(app_client.get("/studies", headers=zh).text).select("tbody td")[2].get_text()
    assert status == i18n.translate(status_code := "active", "zh") and status != status_code
    forms = soup(app_client.get(S, headers=zh).text).select("table")[-1].select(
        "tbody td:nth-of-type(3)")
    assert forms and all(td.get_text() in ("草稿", "已发布") for td in forms)
