"""A PostgreSQL server that is down or drops its connections answers 503 with Retry-After and
writes nothing (never 500); once it is back, the same server serves again. A real uvicorn talks
to PostgreSQL through a TCP relay the test cuts and restores."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import PG_URL, serving
from factories import PASSWORD, make_user
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from audit_trail.models import LedgerEntry
from edc import keyring
from edc.settings import Settings
from edc.state import AppState, build_state
from studies.kernel.roles import Role

pytestmark = pytest.mark.skipif(PG_URL is None, reason="a PostgreSQL outage needs PostgreSQL "
                                "(EDC_TEST_DATABASE_URL); SQLite's busy answer is tested in "
                                "test_served_requests.py")


class Relay:
    """A TCP relay from a local port to the database; ``cut()`` closes the port and every
    connection (the server is down), ``restore()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.port = ls.getsockname()[1]
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        assert self.listener is not None
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (Linux)
        except OSError:
            pass
        self.listener.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.conns = []


@pytest.fixture
def served(fresh_url: str, tmp_path: Path) -> Iterator[tuple[str, AppState, Relay, str]]:
    url = make_url(fresh_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    keys = tmp_path / "keys"
    keyring.create(keys, origin="outage.test/ledger")
    state = build_state(Settings(
        database_url=url.set(host="127.0.0.1", port=relay.port).render_as_string(
            hide_password=False), key_dir=keys, environment="test",
        second_factor_enforced=False))
    with state.sessions() as s, s.begin():
        make_user(s, state.ledger, "mon.wu", Role.MONITOR, study="S1")
    with serving(state) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.post("/api/v1/auth/login", json={"username": "mon.wu", "password": PASSWORD})
            assert r.status_code == 200, r.text
            token = r.cookies["edc_session"]
        yield base, state, relay, token
    relay.cut()


def entries(state: AppState, relay: Relay) -> int:
    with state.sessions() as s:
        return int(s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


def test_a_database_outage_answers_503_with_retry_after_and_recovers(
        served: tuple[str, AppState, Relay, str]) -> None:
    base, state, relay, token = served
    before = entries(state, relay)
    relay.cut()
    with httpx.Client(base_url=base, timeout=60, cookies={"edc_session": token}) as c:
        for method, path, body in (
                ("GET", "/api/v1/me", None),
                ("POST", "/api/v1/tokens", {"name": "x", "role": "monitor", "study": "S1"}),
                ("POST", "/api/v1/auth/login", {"username": "mon.wu", "password": PASSWORD})):
            r = c.request(method, path, json=body)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers.get("retry-after"), path
            assert r.json()["error"]["code"] == "busy"
        relay.restore()
        assert entries(state, relay) == before  # nothing was written while it was down
        r = c.get("/api/v1/me")
        assert r.status_code == 200, r.text
        assert r.json()["username"] == "mon.wu"


def test_a_connection_dropped_while_idle_is_replaced_before_a_request_uses_it(
        served: tuple[str, AppState, Relay, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A pooled connection that sat unused for ``PING_AFTER_IDLE_S`` is pinged before a request
    gets it: when the server restarted (or a firewall closed the connection) in between, the
    pool connects afresh and the request is served, not refused."""
    import edc.db

    base, state, relay, token = served
    monkeypatch.setattr(edc.db, "PING_AFTER_IDLE_S", 0.3)
    with httpx.Client(base_url=base, timeout=30, cookies={"edc_session": token}) as c:
        assert c.get("/api/v1/me").status_code == 200  # the pool holds a live connection
        relay.cut()  # the server goes away and comes back: that connection is dead
        relay.restore()
        threading.Event().wait(0.5)
        for _ in range(3):
            r = c.get("/api/v1/me")
            assert r.status_code == 200, r.text
            assert r.json()["username"] == "mon.wu"
