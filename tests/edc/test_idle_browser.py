"""Idle screens blank (§11.1.2.4), in headless Chromium served by uvicorn: after
EDC_IDLE_BLANK_SECONDS without input the page's content is hidden behind a notice, and the
next input shows it again — with nothing refused by the CSP. Skipped where Chromium,
chromedriver or selenium is missing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import serving
from factories import make_entry_study, make_user
from test_pages_browser import browser, console_problems, log_in  # noqa: F401  (fixture)

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.settings import Settings
from edc.state import build_state
from studies.kernel.roles import Role

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and DRIVER.exists()),
                                reason="chromium / chromedriver not installed")
STUDY = "ENT-2026-01"


@pytest.fixture
def server(fresh_url: str, tmp_path: Path) -> Iterator[str]:
    keys = tmp_path / "keys"
    keyring.create(keys, origin="idle.test/ledger")
    engine = make_engine(fresh_url)
    with session_factory(engine)() as session, session.begin():
        ledger = Ledger(signer=keyring.load(keys).signer)
        make_entry_study(session, ledger)
        make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)
    engine.dispose()
    settings = Settings(database_url=fresh_url, key_dir=keys, environment="test",
                        second_factor_enforced=False, idle_blank_seconds=1)
    with serving(build_state(settings)) as url:
        yield url


def test_an_idle_page_blanks_and_input_shows_it_again(server: str,
                                                      browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    log_in(browser, server, "mon")
    browser.get(f"{server}/studies/{STUDY}/entry")
    main = browser.find_element(By.TAG_NAME, "main")
    assert main.is_displayed()
    time.sleep(2)
    assert "idle-blank" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    assert not main.is_displayed()
    assert browser.find_element(By.ID, "idle-notice").is_displayed()
    ActionChains(browser).send_keys("x").perform()
    assert main.is_displayed()
    assert not browser.find_element(By.ID, "idle-notice").is_displayed()
    assert console_problems(browser) == []
