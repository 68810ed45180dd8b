"""Queue, claim and finish jobs.

Claims are ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so runners in several processes
(``edc worker``, and ``edc serve``'s own runner) take different jobs and never wait for each
other; on SQLite every writing transaction begins IMMEDIATE, so claims are serialised anyway
(and there is one process). A job's result is committed in the same transaction as
:func:`complete`, which checks that the runner still holds the job: a runner whose lease ran
out (it was paused, or its heartbeat stopped) rolls its work back instead of committing a
second result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.base import utcnow
from studies.jobs.errors import LeaseLost
from studies.jobs.models import JOB_STATES, Job
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _
from studies.kernel.ids import new_id
from studies.kernel.roles import Perm

# Progress of running jobs on SQLite, by job id. There the job's own transaction holds the one
# write lock while it runs, so progress cannot be written to the table until it commits; SQLite
# is one process, so the process's memory is where every page can read it. On PostgreSQL
# progress is written to the job row in short transactions of its own (``set_progress``).
LIVE_PROGRESS: dict[str, int] = {}


def enqueue(session: Session, *, kind: str, ref: str | None = None,
            payload: dict[str, Any] | None = None, dedupe_key: str | None = None,
            max_attempts: int = 3) -> bool:
    """Queue a job in the caller's transaction; False when ``dedupe_key`` was queued already
    (another runner scheduled the same periodic round)."""
    values = dict(id=new_id(), created_at=utcnow(), kind=kind, ref=ref, payload=payload or {},
                  state="queued", attempts=0, max_attempts=max_attempts, progress=0,
                  dedupe_key=dedupe_key)
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert(Job) if dialect == "postgresql" else sqlite.insert(Job))
    inserted = session.execute(ins.values(**values).on_conflict_do_nothing()
                               .returning(col(Job.id))).scalar_one_or_none()
    return inserted is not None


def _claimable(now: dt.datetime, ref: str | None) -> Any:
    q = select(Job).where(or_(col(Job.state) == "queued",
                              and_(col(Job.state) == "running",
                                   col(Job.lease_expires_at) < now)))
    return q if ref is None else q.where(col(Job.ref) == ref)


def any_claimable(session: Session, *, ref: str | None = None) -> bool:
    """Whether a claim would find a job: a read, so that an idle runner polls without taking
    SQLite's write lock."""
    return session.execute(_claimable(utcnow(), ref).limit(1)).first() is not None


def claim(session: Session, *, worker: str, lease: dt.timedelta, ref: str | None = None,
          now: dt.datetime | None = None) -> Job | None:
    """Take the oldest queued job (about ``ref`` if given), or a running one whose lease
    expired (its runner died), for ``worker`` until ``now + lease``; None when there is none.
    Commit right after, so the claim is visible before the work starts."""
    now = now or utcnow()
    row = session.execute(
        _claimable(now, ref).order_by(col(Job.created_at), col(Job.id)).limit(1)
        .with_for_update(skip_locked=True)).scalar_one_or_none()
    if row is None:
        return None
    row.state, row.claimed_by, row.attempts = "running", worker, row.attempts + 1
    row.heartbeat_at, row.lease_expires_at = now, now + lease
    row.error = None
    session.flush()
    return row


def _held(job_id: str, worker: str, attempt: int) -> Any:
    return and_(col(Job.id) == job_id, col(Job.claimed_by) == worker,
                col(Job.attempts) == attempt, col(Job.state) == "running")


def heartbeat(session: Session, *, job_id: str, worker: str, attempt: int,
              lease: dt.timedelta, now: dt.datetime | None = None) -> bool:
    """Extend the lease; False if the job is no longer this runner's."""
    now = now or utcnow()
    result = session.execute(update(Job).where(_held(job_id, worker, attempt))
                             .values(heartbeat_at=now, lease_expires_at=now + lease))
    return bool(getattr(result, "rowcount", 0))


def set_progress(session: Session, *, job_id: str, worker: str, attempt: int,
                 progress: int) -> None:
    session.execute(update(Job).where(_held(job_id, worker, attempt))
                    .values(progress=progress))


def complete(session: Session, *, job_id: str, worker: str, attempt: int,
             now: dt.datetime | None = None) -> None:
    """Mark the job done in the transaction that holds its result; LeaseLost (and the caller
    rolls back) when another runner has taken the job since."""
    result = session.execute(update(Job).where(_held(job_id, worker, attempt))
                             .values(state="done", progress=100, finished_at=now or utcnow(),
                                     lease_expires_at=None))
    if not getattr(result, "rowcount", 0):
        raise LeaseLost(_("job {job_id} is no longer held by {worker}").format(
                            job_id=job_id, worker=worker),
                        field="job")


def release(session: Session, *, job_id: str, worker: str, attempt: int) -> None:
    """Put the job back in the queue (its runner lost the database, not the job's fault)."""
    session.execute(update(Job).where(_held(job_id, worker, attempt))
                    .values(state="queued", claimed_by=None, lease_expires_at=None))


def fail(session: Session, *, job_id: str, worker: str, attempt: int, error: str,
         now: dt.datetime | None = None) -> bool:
    """Mark the job failed for good (the error says why); False if no longer held."""
    result = session.execute(update(Job).where(_held(job_id, worker, attempt))
                             .values(state="failed", error=error[:2000],
                                     finished_at=now or utcnow(), lease_expires_at=None))
    return bool(getattr(result, "rowcount", 0))


def latest_for(session: Session, *, kind: str, ref: str) -> Job | None:
    return session.execute(
        select(Job).where(col(Job.kind) == kind, col(Job.ref) == ref)
        .order_by(col(Job.created_at).desc()).limit(1)).scalar_one_or_none()


def progress_of(job: Job) -> int:
    """A job's progress as any process sees it (the row; on SQLite the running job's memory)."""
    if job.state == "running":
        return max(LIVE_PROGRESS.get(job.id, 0), job.progress)
    return job.progress


def active(session: Session) -> list[Job]:
    return list(session.execute(
        select(Job).where(col(Job.state).in_(("queued", "running")))
        .order_by(col(Job.created_at))).scalars())


def prune(session: Session, *, before: dt.datetime) -> int:
    """Delete finished jobs older than ``before``; returns how many."""
    result = session.execute(delete(Job).where(col(Job.state).in_(("done", "failed")),
                                               col(Job.finished_at) < before))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Overview:
    """The queue as any web process sees it (the job rows): how many jobs are in each state,
    since when the oldest queued job waits, the running jobs whose runner stopped answering
    (lease run out: the next claim retries them), the runners working now with their last
    heartbeat, and the newest jobs."""

    counts: dict[str, int]
    oldest_queued: dt.datetime | None
    stalled: int
    runners: list[tuple[str, dt.datetime | None]]
    jobs: list[Job]


def overview(session: Session, *, actor: Actor, state: str | None = None, limit: int = 100,
             now: dt.datetime | None = None) -> Overview:
    """The queue for an operator (``jobs.read``): ``state`` keeps the jobs in one state."""
    require(actor, Perm.JOBS_READ)
    if state is not None and state not in JOB_STATES:
        raise InvalidInput(_("state: one of {states}").format(states=", ".join(JOB_STATES)),
                           field="state")
    now = now or utcnow()
    counts = {s: 0 for s in JOB_STATES}
    counts.update({str(s): int(n) for s, n in session.execute(
        select(col(Job.state), func.count()).group_by(col(Job.state)))})
    oldest = session.execute(select(func.min(col(Job.created_at)))
                             .where(col(Job.state) == "queued")).scalar_one_or_none()
    running = list(session.execute(select(Job).where(col(Job.state) == "running")).scalars())
    # a lease run out is what a claim takes again (_claimable)
    live = [j for j in running if j.lease_expires_at is None or j.lease_expires_at >= now]
    beats: dict[str, dt.datetime | None] = {}
    for j in live:
        if j.claimed_by:
            beats[j.claimed_by] = max(
                (t for t in (beats.get(j.claimed_by), j.heartbeat_at) if t is not None),
                default=None)
    query = select(Job).order_by(col(Job.created_at).desc(), col(Job.id)).limit(limit)
    if state is not None:
        query = query.where(col(Job.state) == state)
    return Overview(counts=counts, oldest_queued=oldest, stalled=len(running) - len(live),
                    runners=sorted(beats.items()), jobs=list(session.execute(query).scalars()))
