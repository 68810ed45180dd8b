"""The real client address behind a reverse proxy (§11.6.2.2 g): forwarded headers are honoured
only from EDC_TRUSTED_PROXIES; with a proxy trusted the loopback address is no longer "inside
the hospital", so a login from outside needs the second factor, and the ledger records the
outside address, not the proxy's. Proven with a real uvicorn behind a real nginx."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from conftest import app_with, serving
from factories import PASSWORD, enrol_totp, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.settings import Settings
from edc.state import AppState, build_state
from studies.kernel.roles import Role

OUTSIDE = "127.0.0.2"   # a client address outside the hospital (on this machine's loopback)
HOSPITAL = "127.0.0.3"  # the one hospital address in EDC_HOSPITAL_NETWORKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NGINX_CONF = """
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{server}
}}
"""


def nginx_server_block(listen: int, upstream: str) -> str:
    """The server block docs/operators.md shows (TLS left out: the test speaks plain HTTP)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operators.md").read_text()
    block = doc.split("```nginx\n", 1)[1].split("```", 1)[0]
    start = block.index("    location / {")
    location = block[start:block.index("    }\n", start) + 6]
    return (f"    server {{\n        listen 127.0.0.1:{listen};\n"
            + "\n".join("    " + line for line in location.splitlines())
            .replace("http://127.0.0.1:8000", upstream) + "\n    }")


@pytest.fixture
def proxied(fresh_url: str, tmp_path: Path) -> Iterator[tuple[str, str, AppState, str]]:
    """A real server trusting the nginx in front of it; a monitor with TOTP enrolled. Yields
    (the proxy's URL, the server's own URL, the state, the TOTP secret)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is needed: run scripts/system-tools.sh"
    keys = tmp_path / "keys"
    keyring.create(keys, origin="proxy.test/ledger")
    settings = Settings(database_url=fresh_url, key_dir=keys, environment="test",
                        second_factor_enforced=True, trusted_proxies="127.0.0.1",
                        hospital_networks=f"{HOSPITAL}/32")
    state = build_state(settings)
    with state.sessions() as s, s.begin():
        user = make_user(s, state.ledger, "mon.wu", Role.MONITOR, study="S1")
        secret = enrol_totp(s, user, state.auth)
    with serving(state) as upstream:
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp_path,
                                          server=nginx_server_block(port, upstream)))
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g",
                                 "daemon off;"], stderr=subprocess.PIPE)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}", upstream, state, secret
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def client_from(address: str, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def login_entries(state: AppState) -> list[tuple[str, str | None]]:
    with state.sessions() as s:
        return [(e.outcome, e.client) for e in s.execute(
            select(LedgerEntry).where(LedgerEntry.action == "auth.login")
            .order_by(LedgerEntry.seq)).scalars()]


def test_an_outside_login_through_the_proxy_needs_the_second_factor_and_is_audited_with_the_outside_address(  # noqa: E501
        proxied: tuple[str, str, AppState, str]) -> None:
    proxy, _, state, secret = proxied
    with client_from(OUTSIDE, proxy) as c:
        # a forged X-Forwarded-For from the client is not believed: nginx appends the real peer
        r = c.post("/api/v1/auth/login", json={"username": "mon.wu", "password": PASSWORD},
                   headers={"X-Forwarded-For": HOSPITAL})
        assert r.status_code == 401, r.text
        assert r.json()["error"]["field"] == "totp"
        r = c.post("/api/v1/auth/login", json={"username": "mon.wu", "password": PASSWORD,
                                                "totp": pyotp.TOTP(secret).now()})
        assert r.status_code == 200, r.text
        assert r.json()["second_factor"] is True
    assert login_entries(state) == [("failure", OUTSIDE), ("success", OUTSIDE)]


def test_a_hospital_login_through_the_proxy_needs_no_second_factor(
        proxied: tuple[str, str, AppState, str]) -> None:
    proxy, _, state, _ = proxied
    with client_from(HOSPITAL, proxy) as c:
        r = c.post("/api/v1/auth/login", json={"username": "mon.wu", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["second_factor"] is False
    assert login_entries(state) == [("success", HOSPITAL)]


def test_forwarded_headers_from_anyone_but_the_proxy_are_ignored(
        proxied: tuple[str, str, AppState, str]) -> None:
    _, upstream, state, _ = proxied
    with client_from(OUTSIDE, upstream) as c:  # straight to the server, past the proxy
        r = c.post("/api/v1/auth/login", json={"username": "mon.wu", "password": PASSWORD},
                   headers={"X-Forwarded-For": HOSPITAL})
        assert r.status_code == 401, r.text
    assert login_entries(state) == [("failure", OUTSIDE)]


@pytest.fixture
def behind_proxy(settings: Settings, engine: Engine, keys: keyring.Keyring, ledger: Ledger,
                 session: Session) -> Iterator[tuple[TestClient, AppState]]:
    """A proxy trusted, EDC_HOSPITAL_NETWORKS left at its default; the client is the proxy on
    loopback, forwarding nothing."""
    with app_with(settings, engine, keys, ledger, session, client=("127.0.0.1", 5000),
                  second_factor_enforced=True, trusted_proxies="127.0.0.1") as both:
        yield both


def test_with_a_proxy_trusted_loopback_is_not_the_hospital_by_default(
        behind_proxy: tuple[TestClient, AppState], session: Session, ledger: Ledger) -> None:
    client, state = behind_proxy
    user = make_user(session, ledger, "mon.wu", Role.MONITOR, study="S1")
    enrol_totp(session, user, state.auth)
    r = client.post("/api/v1/auth/login", json={"username": "mon.wu", "password": PASSWORD})
    assert (r.status_code, r.json()["error"]["field"]) == (401, "totp")
    assert Settings(trusted_proxies="").effective_hospital_networks == "127.0.0.0/8,::1/128"
