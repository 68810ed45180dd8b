"""Helpers of the page tests: parse a page, log in as someone else, wait for a browser to
leave a page."""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import urldefrag, urlsplit

from bs4 import BeautifulSoup
from factories import PASSWORD
from fastapi.testclient import TestClient

# The tests read the pages in English (the switch's other language); tests/test_i18n.py and the
# browser journeys read them in Chinese, the default.
ENGLISH = {"Accept-Language": "en"}


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def login(client: TestClient, username: str) -> None:
    """Log in afresh (the cookies of whoever was logged in before are dropped)."""
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text


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
            if href.startswith("/language/"):  # the language switch: tests/test_i18n.py
                continue
            if href.startswith(("/static/", "/audit/export", "/extracts/")) and level:
                continue
            todo.append((href, level + 1))
    return seen


def left(element: Any) -> Any:
    """Wait condition: the page that held ``element`` is gone. Asked while the browser is
    between two pages, ChromeDriver may answer "unhandled inspector error" instead of "stale":
    that is asked again, not taken as an answer."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def gone(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "inspector error" not in str(exc):
                raise
        return False

    return gone
