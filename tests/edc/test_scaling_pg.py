"""Past one process (issue 17): two real ``edc serve`` web processes and real ``edc worker``
job workers on one real PostgreSQL database. What one web process learns, the other knows —
a session, a login lockout, the login rate limit, an extract build's state and progress — and
the workers build each job once, also when one of them is killed in the middle of a build.
Web process B is ``edc serve --workers 2`` (two processes behind one port).

PostgreSQL only: several processes sharing a database is the PostgreSQL deployment; SQLite is
the one-process embedded mode (``edc serve --workers 2`` on SQLite is refused, tested in
tests/edc/test_serve_workers.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PG_URL, create_database, drop_database
from factories import PASSWORD, make_extract_study, make_user
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from audit_trail.models import LedgerCheckpoint, LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from studies.accounts.service import actor_for
from studies.extracts import service as ex
from studies.extracts.models import ExtractRequest, ExtractTransfer
from studies.extracts.schemas import RequestIn
from studies.jobs.models import Job
from studies.kernel.roles import Role
from studies.subjects.models import Disclosure

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="PostgreSQL only: several web processes and job workers share one "
    "PostgreSQL database; SQLite is the one-process embedded mode")

EDC = str(Path(sys.executable).with_name("edc"))
LEASE_SECONDS = 3


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    url: str
    engine: Engine
    env: dict[str, str]
    tmp: Path
    a: str = ""
    b: str = ""
    requests: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen([EDC, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def serve(self, *names: tuple[str, int]) -> list[str]:
        """Start ``edc serve --workers N`` per (name, N), all at once; their base URLs once
        they answer."""
        bases = []
        for name, workers in names:
            port = free_port()
            self.start("serve", "--port", str(port), "--workers", str(workers), name=name)
            bases.append(f"http://127.0.0.1:{port}")
        for (name, _), base in zip(names, bases, strict=True):
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(self.log(name))
                time.sleep(0.2)
        return bases

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    import nacl.pwhash

    from studies.accounts import service as accounts

    tmp = tmp_path_factory.mktemp("cluster")
    url = create_database(tmp)
    key_dir = tmp / "keys"
    keyring.create(key_dir, origin="cluster.test/ledger")
    keys = keyring.load(key_dir)
    engine = make_engine(url)
    sessions = session_factory(engine)
    ledger = Ledger(signer=keys.signer)
    ident = tmp / "id.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    fast = pytest.MonkeyPatch()  # Argon2id at its minimum cost for the accounts made here
    fast.setattr(accounts, "hash_password", lambda pw: nacl.pwhash.argon2id.str(
        pw.encode(), opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN).decode())
    ids = []
    with sessions() as s, s.begin():
        make_extract_study(s, ledger, "EXT-SC", n=12)
        sponsor = actor_for(s, make_user(s, ledger, "sponsor1", Role.SPONSOR), client=None)
        make_user(s, ledger, "dm", Role.DATA_MANAGER)
        make_user(s, ledger, "locky", Role.INVESTIGATOR)
        make_user(s, ledger, "burst", Role.INVESTIGATOR)
        for i in range(3):
            make_user(s, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER)
        for _ in range(2):
            req = ex.create_request(s, ledger, actor=sponsor, study_code="EXT-SC", data=RequestIn(
                purpose="Efficacy analysis by age band", tier="lds", k=5,
                recipient_org="example-pharma", fields=["demographics.ethnicity", "labs.hba1c"],
                recipient_key=pub, use_from=dt.date.today(),
                use_until=dt.date.today() + dt.timedelta(days=30)))
            req.status = "approved"  # the approval rules are tested in test_extracts.py
            s.flush()
            ids.append(req.id)
    fast.undo()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDC_")}
    env.update(EDC_DATABASE_URL=url, EDC_KEY_DIR=str(key_dir), EDC_ENVIRONMENT="test",
               EDC_SECOND_FACTOR_ENFORCED="false", EDC_EXTRACT_DIR=str(tmp / "extracts"),
               EDC_SERVE_JOBS="false", EDC_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
               EDC_LOGIN_RATE_PER_ACCOUNT="6", EDC_LOGIN_RATE_PER_CLIENT="1000")
    c = Cluster(url=url, engine=engine, env=env, tmp=tmp, requests=ids)
    try:
        # A: one process; B: two (uvicorn's workers, each its own application and pool).
        c.a, c.b = c.serve(("web-a", 1), ("web-b", 2))
        yield c
    finally:
        for p in c.procs:
            if p.poll() is None:
                p.terminate()
        for p in c.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        engine.dispose()
        drop_database(url)


def login(base: str, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/auth/login", timeout=30,
                      json={"username": username, "password": password})


def session_of(base: str, username: str) -> httpx.Client:
    r = login(base, username)
    assert r.status_code == 200, r.text
    return httpx.Client(cookies=r.cookies, timeout=30)


def test_a_session_a_lockout_and_the_rate_limit_reached_through_one_process_hold_on_the_other(
        cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    with session_of(a, "dm") as dm:  # logged in through A, recognised by B
        assert dm.get(f"{b}/api/v1/me").json()["username"] == "dm"
    for _ in range(5):  # five wrong passwords through A lock the account...
        assert login(a, "locky", "not the password at all").status_code == 401
    r = login(b, "locky")  # ...and B refuses even the right one
    # (a client that sends no Accept-Language reads the hospital's language, Chinese)
    assert r.status_code == 423 and "已被锁定" in r.json()["error"]["message"]
    # Six attempts a minute per account (EDC_LOGIN_RATE_PER_ACCOUNT), wherever they land.
    for i in range(6):
        assert login((a, b)[i % 2], "burst").status_code == 200
    r = login(b, "burst")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert login(a, "burst").status_code == 429


def wait_for(what: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out")


def blocked_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid() AND query ILIKE '%extract_transfer%'")).scalar())


def build_state(client: httpx.Client, base: str, rid: str) -> dict[str, Any]:
    r = client.get(f"{base}/api/v1/extracts/{rid}")
    assert r.status_code == 200, r.text
    return dict(r.json()["build"])


def built(client: httpx.Client, base: str, rid: str, timeout: float = 60) -> dict[str, Any]:
    """The build's state once it is over, as ``base`` shows it."""
    return dict(wait_for(lambda: (st := build_state(client, base, rid))["state"]
                         in ("done", "blocked") and st, timeout=timeout))


@contextmanager
def build_held(cluster: Cluster, dm: httpx.Client, rid: str) -> Iterator[None]:
    """Ask web process A for the build and hold it at its last insert — its transaction
    open, everything else written — until the block exits."""
    with cluster.engine.connect() as hold:
        tx = hold.begin()
        hold.execute(text("LOCK TABLE extract_transfer IN EXCLUSIVE MODE"))
        r = dm.post(f"{cluster.a}/api/v1/extracts/{rid}/build", json={})
        assert r.status_code == 202, r.text
        wait_for(lambda: blocked_on_a_lock(cluster.engine))
        try:
            yield
        finally:
            tx.rollback()


def test_a_build_asked_of_one_process_is_built_by_the_worker_and_followed_on_the_other(
        cluster: Cluster) -> None:
    a, b, rid = cluster.a, cluster.b, cluster.requests[0]
    worker = cluster.start("worker", "--interval", "0.5", name="worker-1")
    with session_of(a, "dm") as dm:
        with build_held(cluster, dm, rid):  # so that its progress can be read while it runs
            seen = build_state(dm, b, rid)  # through the other web process
            assert seen["state"] == "running" and seen["progress"] == 100
            with cluster.engine.connect() as c:  # the request's own row is not built yet
                assert c.execute(select(ExtractRequest.progress).where(
                    ExtractRequest.id == rid)).scalar() == 1
        done = built(dm, b, rid)
    assert done["progress"] == 100
    assert worker.poll() is None
    with cluster.engine.connect() as c:
        job = c.execute(select(Job).where(Job.ref == rid)).one()
        assert (job.state, job.attempts) == ("done", 1)
        assert job.claimed_by.split(":")[1] == str(worker.pid)  # the worker built it
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert "stopped" in cluster.log("worker-1")
    with cluster.engine.connect() as c:  # it signed the last entries as it stopped
        size = c.execute(select(func.max(LedgerCheckpoint.tree_size))).scalar()
        assert size == c.execute(select(func.max(LedgerEntry.seq))).scalar()


def test_a_job_whose_worker_is_killed_mid_build_is_retried_after_its_lease_and_built_once(
        cluster: Cluster) -> None:
    a, b, rid = cluster.a, cluster.b, cluster.requests[1]
    first = cluster.start("worker", "--interval", "0.5", name="worker-killed")
    with session_of(a, "dm") as dm:
        with build_held(cluster, dm, rid):
            with cluster.engine.connect() as c:
                job = c.execute(select(Job).where(Job.ref == rid)).one()
            assert job.claimed_by.split(":")[1] == str(first.pid) and job.attempts == 1
            first.kill()  # SIGKILL in the middle of the build's transaction
            first.wait(10)
        # Two workers now; the job's lease runs out (its heartbeat died with the worker).
        others = [cluster.start("worker", "--interval", "0.5", name=f"worker-{i}")
                  for i in (2, 3)]
        done = built(dm, b, rid, timeout=90)
    assert done["progress"] == 100
    with cluster.engine.connect() as c:
        job = c.execute(select(Job).where(Job.ref == rid)).one()
        assert job.state == "done" and job.attempts == 2
        assert job.claimed_by.split(":")[1] in {str(p.pid) for p in others}
        # Built once: one transfer record, one successful build entry, no disclosure twice.
        assert c.execute(select(func.count()).select_from(ExtractTransfer).where(
            ExtractTransfer.request_id == rid, ExtractTransfer.event == "built")).scalar() == 1
        assert c.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.action == "extract.build", LedgerEntry.entity_id == rid,
            LedgerEntry.outcome == "success")).scalar() == 1
        subjects = c.execute(select(Disclosure.subject_id).where(
            Disclosure.request_id == rid)).scalars().all()
        assert subjects and len(subjects) == len(set(subjects))
        req = c.execute(select(ExtractRequest).where(ExtractRequest.id == rid)).one()
    package = cluster.tmp / "extracts" / req.package_file
    assert hashlib.sha256(package.read_bytes()).hexdigest() == req.package_sha256
    for p in others:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    r = subprocess.run([EDC, "audit", "verify"], env=cluster.env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
