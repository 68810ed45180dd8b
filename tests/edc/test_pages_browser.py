"""Each role's main journey in headless Chromium (Selenium), served by uvicorn: log in, click
from the home page to the work, see a form error at its field, a chart drawn, the API
reference working offline — with nothing refused by the CSP in the console. Every journey
saves screenshots under ``var/screenshots`` (emptied at the start). Skipped where Chromium,
chromedriver or selenium is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serving
from factories import PASSWORD, VITALS, make_entry_study, make_user

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import build_state
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.actor import Actor
from studies.kernel.roles import Role

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", \
    shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                                reason="chromium / chromedriver not installed")
STUDY = "ENT-2026-01"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module", autouse=True)
def clean_screenshots() -> None:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)


@pytest.fixture
def server(fresh_url: str, tmp_path: Path) -> Iterator[str]:
    keys = tmp_path / "keys"
    keyring.create(keys, origin="browser.test/ledger")
    engine = make_engine(fresh_url)
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger, subjects=("S01-ENT01", "S01-ENT02"))
        for name, role in (("inv", Role.INVESTIGATOR), ("mon", Role.MONITOR),
                           ("dm", Role.DATA_MANAGER), ("sponsor", Role.SPONSOR),
                           ("stat", Role.STATISTICIAN), ("pi", Role.PRINCIPAL_INVESTIGATOR)):
            make_user(session, ledger, name, role, study=STUDY)
        inv = Actor(user_id="inv", username="inv", display_name="Inv",
                    grants=((Role.INVESTIGATOR, STUDY),))
        entry.save_form(session, ledger, actor=inv, study_code=STUDY, subject_code="S01-ENT01",
                        event_name="baseline", form_name="vital_signs",
                        data=SaveIn(base_version=0, values=VITALS))
    engine.dispose()
    settings = Settings(database_url=fresh_url, key_dir=keys, environment="test",
                        second_factor_enforced=False)
    with serving(build_state(settings)) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: Any, server: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{server}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    click(driver, "form button[type=submit]")


def click(driver: Any, css: str) -> None:
    """Click and wait until the browser has left the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    element = driver.find_element(By.CSS_SELECTOR, css)
    element.click()
    WebDriverWait(driver, 15).until(ec.staleness_of(element))


def follow(driver: Any, text: str) -> None:
    """Click the first link whose text is ``text`` (as a person does)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    link = driver.find_element(By.LINK_TEXT, text)
    link.click()
    WebDriverWait(driver, 15).until(ec.staleness_of(link))


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def console_problems(driver: Any) -> list[str]:
    """What the console complains of (a CSP refusal, a missing asset); the 422 of a refused
    form's own page is its design, not a problem."""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] in ("SEVERE", "WARNING") and "status of 422" not in e["message"]]


def test_the_investigator_clicks_to_the_grid_and_sees_an_enrolment_error_at_its_field(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "inv")
    shot(browser, "investigator-home")
    follow(browser, "数据录入与状态 / Data entry and status")
    assert browser.find_element(By.CSS_SELECTOR, "a.st-complete").text == "● v1"
    assert "已核查 / verified" in browser.find_element(By.CSS_SELECTOR, "ul.legend").text
    shot(browser, "investigator-entry-grid")
    follow(browser, "入组 / Enrol a subject")
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
    follow(browser, "监查工作清单 / Monitor worklist")
    assert "S01-ENT01" in browser.find_element(By.ID, "unverified-forms").text
    shot(browser, "monitor-worklist")
    click(browser, "form[action='/logout'] button")
    log_in(browser, server, "dm")
    follow(browser, "进度图表 / Progress charts")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart-enrolment rect")
    assert bars and bars[0].size["width"] > 0
    shot(browser, "data-manager-charts")
    follow(browser, "导出数据 / Export data")
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
    follow(browser, "申请数据提取 / Request an extract")
    assert browser.find_element(By.NAME, "purpose").is_displayed()
    shot(browser, "sponsor-request-form")
    browser.get(f"{server}/api/v1/docs")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock"))
    shot(browser, "api-reference")
    assert console_problems(browser) == []


def test_the_statistician_asks_for_an_export_and_the_pi_signs_its_approval(
        server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "stat")
    follow(browser, "导出数据 / Export data")
    assert "none" in browser.find_element(By.ID, "current-approval").get_attribute("class")
    browser.find_element(By.ID, "purpose").send_keys("primary analysis")
    click(browser, "#export-request-form button[type=submit]")
    assert "待审批 / pending" in browser.find_element(By.ID, "export-requests").text
    shot(browser, "statistician-export-requested")
    click(browser, "form[action='/logout'] button")
    log_in(browser, server, "pi")
    follow(browser, "数据导出审批 / Export approvals")
    browser.find_element(By.ID, "sig_username").send_keys("pi")
    browser.find_element(By.ID, "sig_password").send_keys(PASSWORD)
    shot(browser, "pi-export-approval")
    click(browser, "form.export-decision button[type=submit]")
    click(browser, "form[action='/logout'] button")
    log_in(browser, server, "stat")
    follow(browser, "导出数据 / Export data")
    current = browser.find_element(By.ID, "current-approval")
    assert "none" not in (current.get_attribute("class") or "") and "pi" in current.text
    assert browser.find_element(By.LINK_TEXT, "SPSS .sav").get_attribute("href").endswith(
        f"/api/v1/studies/{STUDY}/export/statistics/sav")
    shot(browser, "statistician-export-approved")
    assert console_problems(browser) == []
