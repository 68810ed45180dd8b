"""Helpers of the page tests: parse a page, log in as someone else."""

from __future__ import annotations

from bs4 import BeautifulSoup
from factories import PASSWORD
from fastapi.testclient import TestClient


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(text, "html.parser")


def login(client: TestClient, username: str) -> None:
    """Log in afresh (the cookies of whoever was logged in before are dropped)."""
    client.cookies.clear()
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
