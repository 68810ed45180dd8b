"""The job runner: claims queued jobs (``studies.jobs``) and runs each with its handler.

One runner loop runs in ``edc worker`` (PostgreSQL: any number of them, on any machine) and,
as a thread, inside ``edc serve`` unless ``EDC_SERVE_JOBS`` is false (SQLite: the one process
runs everything, as before). Each loop also schedules the periodic jobs — a checkpoint round
every ``EDC_CHECKPOINT_SECONDS``, a sweep every ``EDC_SWEEP_SECONDS`` and, when
``EDC_BACKUP_DIR`` is set, a backup every ``EDC_BACKUP_HOURS`` — with a key per interval, so
that however many runners schedule a round it is queued, and run, once.

A job's result commits with :func:`studies.jobs.service.complete` in one transaction; on
PostgreSQL a heartbeat thread extends the claim's lease while the job runs and progress is
written to the job row in short transactions of their own. A runner that dies (killed, its
machine lost) leaves its job ``running`` with a lease that runs out; the next claim takes the
job again, up to ``max_attempts`` claims, and nothing the dead runner wrote was committed.
A job that raises fails for good with the error (a build that cannot be made will not be
made by trying again); a lost database connection puts the job back in the queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from edc.jobs.checkpoints import CheckpointWorker, WitnessClient
from edc.settings import parse_witnesses
from edc.state import AppState
from studies.jobs import service as jobs
from studies.jobs.errors import LeaseLost
from studies.jobs.models import Kind

log = logging.getLogger(__name__)

KEEP_FINISHED_DAYS = 7     # the sweep deletes finished jobs older than this


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


@dataclass
class JobContext:
    """What a handler gets: the application, the job and the means to report on it."""

    state: AppState
    job_id: str
    kind: str
    ref: str | None
    payload: dict[str, Any]
    worker: str
    attempt: int
    max_attempts: int = 3
    _last: int = field(default=-1)

    def progress(self, p: int) -> None:
        """Report progress (0–100): into the job row on PostgreSQL (its own short transaction,
        visible to every web process), into this process's memory on SQLite."""
        if p == self._last:
            return
        self._last = p
        if not self.state.shared:
            jobs.LIVE_PROGRESS[self.job_id] = p
            return
        with self.state.sessions() as s, s.begin():
            jobs.set_progress(s, job_id=self.job_id, worker=self.worker, attempt=self.attempt,
                              progress=p)

    def complete(self, session: Session) -> None:
        """Mark the job done in ``session``, the transaction that holds its result."""
        jobs.complete(session, job_id=self.job_id, worker=self.worker, attempt=self.attempt)


@dataclass
class Handler:
    run: Callable[[JobContext], None]
    # Record a failure for good in the job's subject (the extract request), in the
    # transaction that marks the job failed.
    failed: Callable[[JobContext, Session, str], None] = field(
        default=lambda _ctx, _s, _m: None)


class _Heartbeat(threading.Thread):
    def __init__(self, ctx: JobContext, lease: float) -> None:
        super().__init__(name=f"heartbeat-{ctx.job_id[:8]}", daemon=True)
        self.ctx, self.lease = ctx, lease
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.lease / 3):
            try:
                with self.ctx.state.sessions() as s, s.begin():
                    held = jobs.heartbeat(s, job_id=self.ctx.job_id, worker=self.ctx.worker,
                                          attempt=self.ctx.attempt,
                                          lease=dt.timedelta(seconds=self.lease))
                if not held:
                    return
            except Exception:  # noqa: BLE001 - the next beat tries again
                log.exception("heartbeat of job %s", self.ctx.job_id)


class Runner:
    """Claims and runs jobs for one application state; ``handlers`` by job kind."""

    def __init__(self, state: AppState, *, lease: float | None = None,
                 handlers: dict[str, Handler] | None = None, name: str | None = None) -> None:
        self.state = state
        self.lease = float(lease or state.settings.job_lease_seconds)
        self.name = name or worker_name()
        clients = [WitnessClient(u, k) for u, k in parse_witnesses(state.settings.witnesses)]
        # Not started as a thread: its rounds run as checkpoint jobs (and one at shutdown).
        self.checkpointer = CheckpointWorker(state.sessions, state.ledger, clients=clients,
                                             interval=state.settings.checkpoint_seconds)
        self.handlers = handlers if handlers is not None else default_handlers(self)
        self._scheduled: dict[str, int] = {}  # kind → the interval this runner last queued

    # ── scheduling ────────────────────────────────────────────────────────────────────────
    def schedule(self, now: float | None = None) -> list[str]:
        """Queue the periodic jobs due in the current interval (once across all runners)."""
        now = time.time() if now is None else now
        st = self.state.settings
        due = [(Kind.CHECKPOINT, st.checkpoint_seconds), (Kind.SWEEP, st.sweep_seconds)]
        if st.backup_dir is not None:
            due.append((Kind.BACKUP, st.backup_hours * 3600))
        due = [(k, every) for k, every in due if self._scheduled.get(k) != int(now // every)]
        if not due:  # this runner queued (or saw queued) the current rounds already
            return []
        queued = []
        with self.state.sessions() as s, s.begin():
            for kind, every in due:
                slot = int(now // every)
                self._scheduled[kind] = slot
                payload: dict[str, Any] = {}
                if kind is Kind.BACKUP:
                    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(slot * every))
                    payload = {"out": str(Path(str(st.backup_dir)) / f"edc-{stamp}.backup.age"),
                               "recipient": st.backup_recipient}
                if jobs.enqueue(s, kind=kind, payload=payload, dedupe_key=f"{kind}:{slot}",
                                max_attempts=2):
                    queued.append(str(kind))
        return queued

    # ── running ───────────────────────────────────────────────────────────────────────────
    def claim(self, *, ref: str | None = None) -> JobContext | None:
        with self.state.read_sessions() as s, s.begin():
            if not jobs.any_claimable(s, ref=ref):
                return None
        with self.state.sessions() as s, s.begin():
            job = jobs.claim(s, worker=self.name, lease=dt.timedelta(seconds=self.lease),
                             ref=ref)
            if job is None:
                return None
            return JobContext(self.state, job.id, job.kind, job.ref, dict(job.payload),
                              self.name, job.attempts, job.max_attempts)

    def run_one(self, *, ref: str | None = None) -> JobContext | None:
        """Claim one job and run it; the job's context, or None when nothing was queued."""
        ctx = self.claim(ref=ref)
        if ctx is None:
            return None
        self.execute(ctx)
        return ctx

    def execute(self, ctx: JobContext) -> None:
        handler = self.handlers.get(ctx.kind)
        beat = _Heartbeat(ctx, self.lease) if self.state.shared else None
        if beat is not None:
            beat.start()
        message: str | None = None
        try:
            if handler is None:
                message = f"no handler for job kind {ctx.kind!r}"
            elif ctx.attempt > ctx.max_attempts:
                message = (f"the runner stopped {ctx.attempt - 1} times before finishing this "
                           "job; not trying again")
            else:
                handler.run(ctx)
        except LeaseLost:
            log.warning("job %s: lease lost, another runner has it", ctx.job_id)
        except (OperationalError, DBAPIError) as e:
            if _connection_lost(e):
                log.warning("job %s: database connection lost; it will be retried", ctx.job_id)
                self._release(ctx)
            else:
                log.exception("job %s failed", ctx.job_id)
                message = f"database error: {e.__class__.__name__}"
        except Exception as e:  # noqa: BLE001 - a job never takes the runner down
            message = _message(e)
            if message.startswith("internal error"):
                log.exception("job %s (%s) failed", ctx.job_id, ctx.kind)
        finally:
            if beat is not None:
                beat.halt.set()
            jobs.LIVE_PROGRESS.pop(ctx.job_id, None)
        if message is not None:
            with self.state.sessions() as s, s.begin():
                if jobs.fail(s, job_id=ctx.job_id, worker=ctx.worker, attempt=ctx.attempt,
                             error=message) and handler is not None:
                    handler.failed(ctx, s, message)

    def _release(self, ctx: JobContext) -> None:
        try:
            with self.state.sessions() as s, s.begin():
                jobs.release(s, job_id=ctx.job_id, worker=ctx.worker, attempt=ctx.attempt)
        except Exception:  # noqa: BLE001 - the lease runs out and the job is retried anyway
            log.exception("release of job %s", ctx.job_id)

    def run_pending(self, *, limit: int | None = None) -> int:
        """Run queued jobs until there are none (or ``limit``); how many were run."""
        n = 0
        while limit is None or n < limit:
            if self.run_one() is None:
                return n
            n += 1
        return n

    def last_round(self) -> None:
        """On shutdown: sign the last entries and hand them to the witnesses."""
        self.checkpointer.run_once()


def _connection_lost(e: DBAPIError) -> bool:
    return bool(getattr(e, "connection_invalidated", False))


def _message(e: Exception) -> str:
    """What a failed job says: the error's own message when it is one of ours (or the
    system's: a file that cannot be written), else only its kind (the log has the rest)."""
    from edc.jobs.backup import BackupError
    from studies.extracts.errors import BuildError
    from studies.kernel.errors import DomainError

    if isinstance(e, BuildError | DomainError | BackupError | ValueError | OSError):
        return str(e)[:2000] or e.__class__.__name__
    return f"internal error: {e.__class__.__name__}"


# ── the handlers ──────────────────────────────────────────────────────────────────────────────

def default_handlers(runner: Runner) -> dict[str, Handler]:
    from edc.jobs import extracts, sweeps

    def checkpoint(ctx: JobContext) -> None:
        # Idempotent: a second round signs nothing new. The job is marked done afterwards.
        runner.checkpointer.run_once()
        with ctx.state.sessions() as s, s.begin():
            ctx.complete(s)

    return {
        Kind.EXTRACT_BUILD: Handler(extracts.run_build, extracts.build_failed),
        Kind.CHECKPOINT: Handler(checkpoint),
        Kind.SWEEP: Handler(sweeps.run_sweep),
        Kind.BACKUP: Handler(sweeps.run_backup),
    }


class RunnerThread(threading.Thread):
    """A runner loop in a thread: schedule, run what is queued, wait ``interval`` (or a wake)."""

    def __init__(self, runner: Runner, *, interval: float = 2.0) -> None:
        super().__init__(name="job-runner", daemon=True)
        self.runner, self.interval = runner, interval
        self._wake = threading.Event()
        self._halt = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        loop(self.runner, halt=self._halt, wake=self._wake, interval=self.interval)


def loop(runner: Runner, *, halt: threading.Event, wake: threading.Event | None = None,
         interval: float = 2.0) -> None:
    """Until ``halt``: schedule the periodic jobs, run every queued one, sleep."""
    wake = wake or threading.Event()
    while not halt.is_set():
        try:
            runner.schedule()
            while not halt.is_set() and runner.run_one() is not None:
                pass
        except Exception:  # noqa: BLE001 - the loop outlives a failed round (database down)
            log.exception("job runner loop")
        wake.wait(interval)
        wake.clear()
