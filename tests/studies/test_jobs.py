"""The job queue (issue 17): claims, leases, retries and the one committed result — on both
databases, with real connections (each runner its own)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from edc.db import make_engine, session_factory
from studies.accounts.ratelimit import SharedRateLimiter
from studies.jobs import service as jobs
from studies.jobs.errors import LeaseLost
from studies.jobs.models import Job

LEASE = dt.timedelta(seconds=30)


@pytest.fixture
def sessions(fresh_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_url)
    yield session_factory(engine)
    engine.dispose()


def test_concurrent_claimers_never_take_one_job(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        for i in range(12):
            jobs.enqueue(s, kind="sweep", ref=f"r{i}")
    taken: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        start.wait()
        while True:
            with sessions() as s, s.begin():
                job = jobs.claim(s, worker=name, lease=LEASE)
                if job is None:
                    return
                taken[name].append(job.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = taken["a"] + taken["b"]
    assert len(every) == 12 and len(set(every)) == 12  # each job claimed exactly once
    with sessions() as s:
        rows = s.execute(select(Job)).scalars().all()
        assert {r.state for r in rows} == {"running"} and {r.attempts for r in rows} == {1}
        assert {r.claimed_by for r in rows if r.id in taken["a"]} <= {"a"}


def test_an_expired_lease_is_claimed_again_and_the_old_runner_cannot_commit(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        jobs.enqueue(s, kind="sweep", ref="x")
    t0 = dt.datetime.now(dt.UTC)
    with sessions() as s, s.begin():
        first = jobs.claim(s, worker="dead", lease=LEASE, now=t0)
        assert first is not None
    with sessions() as s, s.begin():  # still leased: nobody else gets it
        assert jobs.claim(s, worker="live", lease=LEASE, now=t0 + LEASE / 2) is None
    with sessions() as s, s.begin():  # the lease ran out: the runner is taken for dead
        again = jobs.claim(s, worker="live", lease=LEASE, now=t0 + LEASE * 2)
        assert again is not None and again.id == first.id and again.attempts == 2
    with sessions() as s, s.begin():  # the first runner woke up: its result is refused
        with pytest.raises(LeaseLost):
            jobs.complete(s, job_id=first.id, worker="dead", attempt=1)
        assert not jobs.heartbeat(s, job_id=first.id, worker="dead", attempt=1, lease=LEASE)
    with sessions() as s, s.begin():
        jobs.complete(s, job_id=first.id, worker="live", attempt=2)
    with sessions() as s:
        job = s.get(Job, first.id)
        assert job is not None and (job.state, job.claimed_by, job.progress) == ("done", "live",
                                                                                 100)


def test_a_periodic_round_is_queued_once_however_many_runners_schedule_it(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        assert jobs.enqueue(s, kind="checkpoint", dedupe_key="checkpoint:42")
    with sessions() as s, s.begin():
        assert not jobs.enqueue(s, kind="checkpoint", dedupe_key="checkpoint:42")
        assert jobs.enqueue(s, kind="checkpoint", dedupe_key="checkpoint:43")
    with sessions() as s:
        assert len(s.execute(select(Job)).scalars().all()) == 2


def test_the_shared_login_limiter_counts_attempts_through_every_limiter(
        sessions: sessionmaker[Session]) -> None:
    """Two limiters on one database (two web processes): the window is the same one."""
    t = [1000.0]
    a = SharedRateLimiter(sessions, per_account=3, per_client=100, clock=lambda: t[0])
    b = SharedRateLimiter(sessions, per_account=3, per_client=100, clock=lambda: t[0])
    assert a.check(account="Alice", client="10.0.0.1") is None
    assert b.check(account="alice", client="10.0.0.2") is None
    assert a.check(account="alice", client="10.0.0.3") is None
    wait = b.check(account="ALICE", client="10.0.0.4")
    assert wait is not None and 59 < wait <= 60
    t[0] += 61  # the window slid past the attempts
    assert b.check(account="alice", client="10.0.0.4") is None
