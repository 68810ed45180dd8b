"""The periodic housekeeping jobs: the sweep and the scheduled backup (``edc/jobs/runner.py``).

The sweep ends every session past its idle timeout or lifetime and every session of an
account that ended (each audited), re-locks every unlock whose period is over (as
``edc locks relock-expired``), prunes login-throttle rows no longer in their window and
finished jobs older than a week — all in one transaction with the job's completion.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from edc.jobs import backup
from edc.jobs.runner import KEEP_FINISHED_DAYS, JobContext
from studies.accounts import ratelimit
from studies.accounts import service as accounts
from studies.jobs import service as jobs
from studies.kernel.events import Action
from studies.locks import unlock as unlocks

log = logging.getLogger(__name__)


def run_sweep(ctx: JobContext) -> None:
    now = dt.datetime.now(dt.UTC)
    with ctx.state.sessions() as s, s.begin():
        ended = accounts.end_expired_sessions(s, ctx.state.ledger, config=ctx.state.auth,
                                              now=now)
        relocked = unlocks.relock_expired(s, ctx.state.ledger, now=now)
        throttles = ratelimit.prune(s, now=now)
        old = jobs.prune(s, before=now - dt.timedelta(days=KEEP_FINISHED_DAYS))
        ctx.complete(s)
    if ended or relocked or throttles or old:
        log.info("sweep: %d session(s) ended, %d unlock(s) re-locked, %d throttle row(s) and "
                 "%d old job(s) pruned", ended, len(relocked), throttles, old)


def run_backup(ctx: JobContext) -> None:
    """A scheduled backup (``EDC_BACKUP_DIR``); the file appears complete or not at all."""
    out = Path(str(ctx.payload["out"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    if ctx.attempt > 1:  # a runner died while writing: its partial file is not a backup
        out.with_name(out.name + ".partial").unlink(missing_ok=True)
    result = backup.create(ctx.state, out=out, recipient=str(ctx.payload["recipient"]))
    m = result.manifest
    with ctx.state.sessions() as s, s.begin():
        ctx.state.ledger.append(s, actor="system", action=Action.BACKUP_CREATE,
                                entity_type="backup", entity_id=m["sha256"][:16],
                                client="worker",
                                reason=f"{m['database']} backup at ledger size "
                                       f"{m['ledger_size']}: {out.name}")
        ctx.complete(s)
