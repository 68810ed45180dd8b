"""A real browser (headless Chromium through Selenium) logs in as an investigator and saves a
form served by uvicorn: no JavaScript of ours is needed. Skipped where Chromium, chromedriver
or selenium is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import serving
from factories import make_entry_study, make_user
from pages_util import left

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import build_state
from studies.kernel.roles import Role

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", \
    shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                                reason="chromium / chromedriver not installed")
STUDY = "ENT-2026-01"


@pytest.fixture
def server(fresh_url: str, tmp_path: Path) -> Iterator[str]:
    keys = tmp_path / "keys"
    keyring.create(keys, origin="browser.test/ledger")
    engine = make_engine(fresh_url)
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger)
        make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    engine.dispose()
    settings = Settings(database_url=fresh_url, key_dir=keys, environment="test",
                        second_factor_enforced=False)
    with serving(build_state(settings)) as url:
        yield url


def submit(driver: object, css: str = "form.entry button[type=submit]") -> None:
    """Click and wait until the browser has left the page (post-redirect-get)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    button = driver.find_element(By.CSS_SELECTOR, css)  # type: ignore[attr-defined]
    button.click()
    WebDriverWait(driver, 15).until(left(button))


def test_an_investigator_logs_in_and_saves_a_form_in_a_real_browser(server: str) -> None:
    from factories import PASSWORD
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--lang=en-US"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"{server}/login")
        driver.find_element(By.ID, "username").send_keys("inv")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        submit(driver, "form button[type=submit]")
        page = f"{server}/studies/{STUDY}/entry/S01-ENT01/baseline/vital_signs"
        driver.get(page)
        date = driver.find_element(By.NAME, "visit_date")
        assert date.get_attribute("type") == "date"
        date.send_keys("05012026")  # typed, as on a keyboard (en-US: mm dd yyyy)
        for name, value in (("height", "175"), ("weight", "70.0"), ("sbp", "120")):
            driver.find_element(By.NAME, name).send_keys(value)
        driver.find_element(By.CSS_SELECTOR, "input[name=smoker][value='0']").click()
        driver.find_element(By.CSS_SELECTOR, "input[name=symptoms][value='2']").click()
        submit(driver)
        assert driver.find_element(By.CSS_SELECTOR, ".flash").text == \
            'saved as version 1'
        assert driver.find_element(By.CSS_SELECTOR, ".record-version").text == "1"
        assert driver.find_element(By.ID, "f-bmi").text == "22.9"
        assert driver.find_element(By.NAME, "visit_date").get_attribute("value") == "2026-05-01"
        # a correction in the browser: the reason drop-down is part of the form
        sbp = driver.find_element(By.NAME, "sbp")
        sbp.clear()
        sbp.send_keys("124")
        Select(driver.find_element(By.NAME, "reason.sbp")).select_by_value(
            "transcription_error")
        submit(driver)
        assert driver.find_element(By.CSS_SELECTOR, ".record-version").text == "2", \
            driver.find_element(By.TAG_NAME, "main").text[:600]
    finally:
        driver.quit()
