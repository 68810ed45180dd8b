"""Each role's main journey in headless Chromium (Selenium), served by uvicorn: log in, click
from the home page to the work (investigator, monitor, data manager, sponsor, committee
member, custodian, auditor), see a form error at its field, a chart drawn, the API reference
working offline, and what htmx does live (the eCRF checked, computed and branched as typed,
an SDV tick and a query answer without a reload, extract progress moving) — with nothing
refused by the CSP or otherwise complained of in the console. One server and one browser
serve the module. Every journey saves screenshots under ``var/screenshots`` (emptied at the
start). Skipped where Chromium, chromedriver or selenium is missing."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_URL, create_database, drop_database, serving
from factories import (
    PASSWORD,
    VITALS,
    age_keys,
    make_entry_study,
    make_user,
    publish_all,
    recipient_orgs,
    security_committee,
)
from pages_util import left

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import build_state
from studies.entry import monitoring
from studies.entry import service as entry
from studies.entry.schemas import QueryOpenIn, SaveIn
from studies.extracts import service as ex
from studies.extracts.models import ExtractRequest
from studies.extracts.schemas import RequestIn
from studies.kernel import i18n
from studies.kernel.actor import Actor
from studies.kernel.roles import Role

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", \
    shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                                reason="chromium / chromedriver not installed")
STUDY = "ENT-2026-01"
# one folder per database: `make test` runs the SQLite and PostgreSQL suites side by side
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots" / (
    "postgresql" if PG_URL else "sqlite")


@pytest.fixture(scope="module", autouse=True)
def clean_screenshots() -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """The served database, its key directory and the sponsor's pending extract request."""
    tmp = tmp_path_factory.mktemp("browser")
    url = create_database(tmp)
    keys = tmp / "keys"
    keyring.create(keys, origin="browser.test/ledger")
    engine = make_engine(url)
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger, subjects=("S01-ENT01", "S01-ENT02"))
        for name, role in (("inv", Role.INVESTIGATOR), ("mon", Role.MONITOR),
                           ("dm", Role.DATA_MANAGER), ("sponsor", Role.SPONSOR),
                           ("inv2", Role.INVESTIGATOR), ("stat", Role.STATISTICIAN),
                           ("pi", Role.PRINCIPAL_INVESTIGATOR)):
            make_user(session, ledger, name, role, study=STUDY)
        for name, role in (("custodian", Role.CUSTODIAN), ("auditor", Role.AUDITOR)):
            make_user(session, ledger, name, role)
        security_committee(session, ledger)
        recipient_orgs(session, ledger)
        publish_all(session, ledger, STUDY)
        inv = Actor(user_id="inv", username="inv", display_name="Inv",
                    grants=((Role.INVESTIGATOR, STUDY),))
        mon = Actor(user_id="mon", username="mon", display_name="Mon",
                    grants=((Role.MONITOR, STUDY),))
        sponsor = Actor(user_id="sponsor", username="sponsor", display_name="Sponsor",
                        grants=((Role.SPONSOR, STUDY),))
        entry.save_form(session, ledger, actor=inv, study_code=STUDY, subject_code="S01-ENT01",
                        event_name="baseline", form_name="vital_signs",
                        data=SaveIn(base_version=0, values=VITALS))
        monitoring.open_query(session, ledger, actor=mon, study_code=STUDY, data=QueryOpenIn(
            subject="S01-ENT01", event="baseline", form="vital_signs", item="sbp",
            text="源文件为 128 / Source shows 128"))
        today = dt.date.today()
        req = ex.create_request(session, ledger, actor=sponsor, study_code=STUDY,
                                data=RequestIn(
                                    purpose="Efficacy by age band", tier="lds",
                                    fields=["labs.hba1c"], recipient_org="example-pharma",
                                    recipient_key=age_keys(tmp)[1], use_from=today,
                                    use_until=today + dt.timedelta(days=90)))
        request_id = req.id
    engine.dispose()
    yield url, keys, request_id
    drop_database(url)


@pytest.fixture(scope="module")
def server(database: tuple[str, Path, str]) -> Iterator[str]:
    url, keys, _ = database
    settings = Settings(database_url=url, key_dir=keys, environment="test",
                        second_factor_enforced=False)
    with serving(build_state(settings)) as served:
        yield served


HAN = re.compile(r"[\u4e00-\u9fff]")


def zh(message: str) -> str:
    """What a page shows in Chinese for ``message`` (the journeys run in a Chinese browser)."""
    return i18n.translate(message, "zh")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def chromium(javascript: bool = True) -> Iterator[Any]:
    driver = new_browser(javascript)
    try:
        yield driver
    finally:
        driver.quit()


def new_browser(javascript: bool = True) -> Any:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    # the browser of a hospital's user: Chinese, the pages' default
    prefs: dict[str, Any] = {"intl.accept_languages": "zh-CN,zh"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    opts.add_experimental_option("prefs", prefs)
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=zh-CN"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


# How long a journey waits for a page or a live update: generous, as CI shares two cores
# between the server, the browser and the other tests.
PATIENCE = 40


def log_in(driver: Any, server: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{server}/login")
    driver.delete_all_cookies()  # whoever the shared browser was before
    driver.get_log("browser")  # and what their pages logged
    driver.get(f"{server}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    click(driver, "form button[type=submit]")


def click(driver: Any, css: str) -> None:
    """Click and wait until the browser has left the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    element = driver.find_element(By.CSS_SELECTOR, css)
    element.click()
    WebDriverWait(driver, PATIENCE).until(left(element))


def follow(driver: Any, text: str) -> None:
    """Click the first link whose text is ``text`` (as a person does)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    link = driver.find_element(By.LINK_TEXT, text)
    link.click()
    WebDriverWait(driver, PATIENCE).until(left(link))


def wait(driver: Any, until: Any, timeout: float | None = None) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout or PATIENCE).until(until)


def stay(driver: Any) -> None:
    """Mark the page; :func:`stayed` is true while the browser has not loaded another."""
    driver.execute_script("window.edcStayed = true")


def stayed(driver: Any) -> bool:
    return bool(driver.execute_script("return window.edcStayed === true"))


def text_of(driver: Any, css: str) -> str:
    """The rendered text of the first element ``css`` finds, read in one step (an element
    htmx is swapping can go stale between finding and reading it)."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css))


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def console_problems(driver: Any) -> list[str]:
    """What the console complains of (a CSP refusal, a missing asset); the 422 of a refused
    form's own page is its design, not a problem."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] in ("SEVERE", "WARNING") and "status of 422" not in e["message"]]


def test_the_monitor_switches_the_pages_to_english_and_back(server: str, browser: Any) -> None:
    """The language switch as a person uses it: a Chinese browser gets Chinese pages; the
    menu's "English" link turns this and every later page to English, "中文" back."""
    from selenium.webdriver.common.by import By

    log_in(browser, server, "mon")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert browser.find_element(By.LINK_TEXT, "监查工作清单").is_displayed()
    follow(browser, "English")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    menu = browser.find_element(By.CSS_SELECTOR, "header nav").text
    assert "Log out" in menu and not HAN.search(menu.replace("中文", ""))
    assert not HAN.search(browser.find_element(By.TAG_NAME, "main").text)
    shot(browser, "monitor-home-english")
    follow(browser, "Monitor worklist")  # the choice holds on the next page
    assert "Monitor worklist" in browser.find_element(By.TAG_NAME, "h1").text
    assert not HAN.search(browser.find_element(By.TAG_NAME, "main").text)
    shot(browser, "monitor-worklist-english")
    follow(browser, "中文")
    assert "监查工作清单" in browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "monitor-worklist-chinese")
    assert console_problems(browser) == []


def test_the_investigator_clicks_to_the_grid_and_sees_an_enrolment_error_at_its_field(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "inv")
    shot(browser, "investigator-home")
    follow(browser, "数据录入与状态")
    # S01-ENT01's form is saved and has an open query; S01-ENT02's is not started
    assert browser.find_element(By.CSS_SELECTOR, "a.st-query").text == "！ v1"
    assert browser.find_element(By.CSS_SELECTOR, "a.st-new").text == "○"
    assert zh("verified (SDV)") in browser.find_element(By.CSS_SELECTOR, "ul.legend").text
    shot(browser, "investigator-entry-grid")
    follow(browser, zh("Enrol a subject"))
    browser.find_element(By.NAME, "name").send_keys("测试者")
    browser.find_element(By.NAME, "resident_id").send_keys("110105198001010011")  # check digit
    browser.find_element(By.NAME, "phone").send_keys("12345")
    browser.find_element(By.CSS_SELECTOR, "input[name=consent]").click()
    browser.execute_script("arguments[0].value = '2026-05-01T09:30'",
                           browser.find_element(By.NAME, "given_at"))
    click(browser, "main form button[type=submit]")
    shot(browser, "investigator-enrolment-error")
    err = browser.find_element(By.CSS_SELECTOR, "#field-phone .field-error")
    assert "11" in err.text and err.is_displayed()
    rid = browser.find_element(By.CSS_SELECTOR, "#field-resident_id .field-error")
    assert "校验码" in rid.text
    assert browser.find_element(By.NAME, "name").get_attribute("value") == "测试者"
    shot(browser, "investigator-enrolment-error")
    assert console_problems(browser) == []


def test_the_monitor_reaches_the_worklist_and_the_data_manager_the_charts(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "mon")
    follow(browser, "监查工作清单")
    assert "S01-ENT01" in browser.find_element(By.ID, "unverified-forms").text
    shot(browser, "monitor-worklist")
    click(browser, "form[action='/logout'] button")
    log_in(browser, server, "dm")
    follow(browser, "进度图表")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-enrolment rect")
    assert bars and bars[0].size["width"] > 0
    shot(browser, "data-manager-charts")
    follow(browser, "导出数据")
    assert browser.find_element(
        By.CSS_SELECTOR, "#per-form a[href$='/export/forms/vital_signs.csv']").text == (
        "CSV (Excel)")
    assert browser.find_element(By.ID, "export-request-form")  # ask for an approval here
    shot(browser, "data-manager-exports")
    assert console_problems(browser) == []


def test_the_sponsor_reaches_the_request_form_and_the_api_reference_works_offline(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    log_in(browser, server, "sponsor")
    follow(browser, "申请数据提取")
    assert browser.find_element(By.NAME, "purpose").is_displayed()
    shot(browser, "sponsor-request-form")
    browser.get(f"{server}/api/v1/docs")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock"))
    shot(browser, "api-reference")
    assert console_problems(browser) == []


def test_the_investigator_sees_the_ecrf_check_compute_and_branch_as_she_types(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "inv")
    follow(browser, "数据录入与状态")
    click(browser, "a.st-new[href$='/S01-ENT02/baseline/vital_signs']")
    stay(browser)
    cigs = browser.find_element(By.ID, "field-cigs_per_day")
    assert not cigs.is_displayed()  # hidden until "smoker" is yes
    browser.find_element(By.NAME, "height").send_keys("175")
    browser.find_element(By.NAME, "weight").send_keys("70.0")
    wait(browser, lambda d: text_of(d, "#f-bmi") == "22.9")  # computed by the server
    browser.find_element(By.CSS_SELECTOR, "input[name=smoker][value='1']").click()
    wait(browser, lambda d: d.find_element(By.ID, "field-cigs_per_day").is_displayed())
    browser.find_element(By.NAME, "sbp").send_keys("999")
    wait(browser, lambda d: text_of(d, "#err-sbp .field-error"))
    assert "260" in text_of(browser, "#err-sbp .field-error")
    assert text_of(browser, "#err-weight") == ""  # a correct field has no error
    shot(browser, "investigator-ecrf-live")
    assert stayed(browser)  # all of it without leaving the page
    assert console_problems(browser) == []


def test_the_investigator_answers_a_query_without_a_reload(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "inv")
    follow(browser, "数据录入与状态")
    click(browser, "a.st-query[href$='/S01-ENT01/baseline/vital_signs']")
    stay(browser)
    browser.find_element(By.CSS_SELECTOR, "article.query textarea[name=text]").send_keys(
        "已核对源文件 / Checked against the source")
    browser.find_element(By.CSS_SELECTOR, "article.query form[action$='/answer'] button").click()
    wait(browser, lambda d: text_of(d, "article.query .query-status") == "已回复")
    assert "Checked against the source" in text_of(browser, "article.query .thread")
    shot(browser, "investigator-query-answered")
    assert stayed(browser)
    assert console_problems(browser) == []


def test_the_monitor_ticks_sdv_without_a_reload(server: str, browser: Any) -> None:
    log_in(browser, server, "mon")
    follow(browser, "监查工作清单")
    click(browser, "#unverified-forms a")
    stay(browser)
    assert "未核查" in text_of(browser, "#sdv-row-height .sdv-state")
    browser.find_element("css selector", "#sdv-row-height button").click()
    wait(browser, lambda d: "mon" in text_of(d, "#sdv-row-height .sdv-state")
         and "未核查" not in text_of(d, "#sdv-row-height .sdv-state"))
    wait(browser, lambda d: text_of(d, "#sdv-height").startswith("✓"))  # the form's badge too
    shot(browser, "monitor-sdv-tick")
    assert stayed(browser)
    assert console_problems(browser) == []


def test_a_committee_member_reaches_the_request_waiting_for_a_vote(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "committee1")
    click(browser, "ul.waiting a")
    assert "Efficacy by age band" in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "password").is_displayed()
    shot(browser, "committee-request")
    assert console_problems(browser) == []


def test_the_custodian_and_the_auditor_reach_their_work(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "custodian")
    follow(browser, "患者代码索引")
    assert "患者代码索引" in browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "custodian-code-index")
    follow(browser, "查询记录")
    shot(browser, "custodian-lookup-history")
    assert console_problems(browser) == []
    log_in(browser, server, "auditor")
    follow(browser, "审计与验证")
    shot(browser, "auditor-audit")
    follow(browser, "审计轨迹")
    assert browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
    shot(browser, "auditor-trail")
    assert console_problems(browser) == []


def test_the_sponsor_watches_the_build_progress_move(
        server: str, browser: Any, database: tuple[str, Path, str]) -> None:
    url, _, request_id = database
    engine = make_engine(url)

    def builder_at(state: str, progress: int) -> None:  # as the extract builder writes it
        with session_factory(engine)() as s, s.begin():
            req = s.get(ExtractRequest, request_id)
            assert req is not None
            req.build_state, req.progress = state, progress

    try:
        builder_at("running", 40)
        log_in(browser, server, "sponsor")
        follow(browser, "数据提取申请")
        click(browser, "table.extracts a")
        assert "40%" in text_of(browser, "#build-progress")
        stay(browser)
        builder_at("running", 70)
        wait(browser, lambda d: "70%" in text_of(d, "#build-progress"))
        shot(browser, "sponsor-build-progress")
        assert stayed(browser)  # polled, not reloaded
        builder_at("done", 100)
        wait(browser, lambda d: not stayed(d))  # the finished build reloads the page
        assert f"{zh('done')} 100%" in text_of(browser, "#build-progress")
        assert console_problems(browser) == []
    finally:
        engine.dispose()


def test_without_javascript_the_ecrf_shows_every_field_with_its_condition(
        server: str) -> None:
    from selenium.webdriver.common.by import By

    for driver in chromium(javascript=False):
        log_in(driver, server, "inv")
        follow(driver, "数据录入与状态")
        click(driver, "a.st-new[href$='/S01-ENT02/baseline/vital_signs']")
        assert driver.execute_script("return typeof window.htmx") == "undefined"  # no JS ran
        cigs = driver.find_element(By.ID, "field-cigs_per_day")
        assert cigs.is_displayed()
        assert f'{zh("only if")}: smoker = "1"' in cigs.text
        shot(driver, "investigator-ecrf-without-javascript")


def test_the_ecrf_asks_reasons_only_where_changed_merges_and_shows_a_conflict(
        server: str, browser: Any) -> None:
    """Two investigators edit the same saved form: only the changed field asks for a reason;
    a save on an older version that touches another field merges; the same field changed by
    both shows both values side by side."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page = f"{server}/studies/{STUDY}/entry/S01-ENT01/baseline/vital_signs"

    def change(driver: Any, name: str, value: str) -> None:
        box = driver.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)

    def reasons_shown(driver: Any) -> list[str]:
        return [e.get_attribute("name").split(".", 1)[1]
                for e in driver.find_elements(By.CSS_SELECTOR, "form.entry select")
                if (e.get_attribute("name") or "").startswith("reason.") and e.is_displayed()]

    other = new_browser()
    try:
        log_in(browser, server, "inv")
        log_in(other, server, "inv2")
        browser.get(page)  # both open version 1
        other.get(page)
        assert reasons_shown(browser) == []  # no reason box before anything changed
        change(other, "weight", "72")
        Select(other.find_element(By.NAME, "reason.weight")).select_by_value(
            "transcription_error")
        click(other, "form.entry button[type=submit]")  # version 2
        change(browser, "sbp", "124")
        assert reasons_shown(browser) == ["sbp"]  # only the changed field asks
        shot(browser, "ecrf-reason-at-changed-field")
        Select(browser.find_element(By.NAME, "reason.sbp")).select_by_value(
            "transcription_error")
        click(browser, "form.entry button[type=submit]")
        flash = browser.find_element(By.CSS_SELECTOR, ".flash").text
        assert zh("saved as version {version}").format(version=3) in flash, flash
        assert zh("(merged with others' changes since version {merged_from})").format(
            merged_from=1) in flash, flash
        assert browser.find_element(By.NAME, "weight").get_attribute("value") == "72"
        assert browser.find_element(By.NAME, "sbp").get_attribute("value") == "124"
        shot(browser, "ecrf-merged")
        # a real conflict: both change sbp from version 3
        other.get(page)
        change(other, "sbp", "130")
        Select(other.find_element(By.NAME, "reason.sbp")).select_by_value(
            "transcription_error")
        click(other, "form.entry button[type=submit]")  # version 4
        change(browser, "sbp", "126")
        Select(browser.find_element(By.NAME, "reason.sbp")).select_by_value(
            "transcription_error")
        click(browser, "form.entry button[type=submit]")
        box = browser.find_element(By.CSS_SELECTOR, "#field-sbp .conflict-choice")
        assert box.find_element(By.CSS_SELECTOR, ".theirs").text == "130"
        assert box.find_element(By.CSS_SELECTOR, ".yours").text == "126"
        assert browser.find_element(By.NAME, "sbp").get_attribute("value") == "126"  # kept
        browser.execute_script("arguments[0].scrollIntoView()", box)
        shot(browser, "ecrf-conflict")
        box.find_element(By.CSS_SELECTOR, "input[value=theirs]").click()
        click(browser, "form.entry button[type=submit]")
        assert browser.find_element(By.NAME, "sbp").get_attribute("value") == "130"
        assert browser.find_element(By.CSS_SELECTOR, ".record-version").text == "4"
        # the conflict page's own 409 is its design, as a refused form's 422
        assert [m for m in console_problems(browser) if "status of 409" not in m] == []
    finally:
        other.quit()


def test_the_statistician_asks_for_an_export_and_the_pi_signs_its_approval(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "stat")
    follow(browser, "导出数据")
    assert "none" in browser.find_element(By.ID, "current-approval").get_attribute("class")
    browser.find_element(By.ID, "purpose").send_keys("primary analysis")
    click(browser, "#export-request-form button[type=submit]")
    assert zh("pending") in browser.find_element(By.ID, "export-requests").text
    shot(browser, "statistician-export-requested")
    click(browser, "form[action='/logout'] button")
    log_in(browser, server, "pi")
    follow(browser, "数据导出审批")
    browser.find_element(By.ID, "sig_username").send_keys("pi")
    browser.find_element(By.ID, "sig_password").send_keys(PASSWORD)
    shot(browser, "pi-export-approval")
    click(browser, "form.export-decision button[type=submit]")
    click(browser, "form[action='/logout'] button")
    log_in(browser, server, "stat")
    follow(browser, "导出数据")
    current = browser.find_element(By.ID, "current-approval")
    assert "none" not in (current.get_attribute("class") or "") and "pi" in current.text
    assert browser.find_element(By.LINK_TEXT, "SPSS .sav").get_attribute("href").endswith(
        f"/api/v1/studies/{STUDY}/export/statistics/sav")
    shot(browser, "statistician-export-approved")
    assert console_problems(browser) == []
