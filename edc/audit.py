"""Verifying the ledger on all cores: the structure pass (chain, tree, checkpoints) runs here
while worker processes recompute every leaf hash from the entries' content."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from audit_trail.errors import LedgerIntegrityError
from audit_trail.service import VerifyReport, check_leaves, ledger_size, verify
from edc.db import make_engine, read_session_factory


def _leaves_worker(url: str, first: int, last: int | None) -> int | None:
    engine = make_engine(url)
    try:
        with read_session_factory(engine)() as session:
            return check_leaves(session, first=first, last=last)
    finally:
        engine.dispose()


def default_jobs() -> int:
    """One process per core (docs/benchmarks.md)."""
    return os.cpu_count() or 1


def verify_ledger(url: str, *, vkey: str, jobs: int | None = None) -> VerifyReport:
    """Like ``audit_trail.service.verify``, using ``jobs`` processes. Raises
    LedgerIntegrityError naming the first entry that does not match, whichever check found it."""
    jobs = default_jobs() if jobs is None else jobs
    engine = make_engine(url)
    try:
        with read_session_factory(engine)() as session:
            if jobs <= 1:
                return verify(session, vkey=vkey)
            # This session's snapshot is what is verified: the workers check its entries'
            # leaves (the ledger only grows, so their later snapshots hold them all).
            size = ledger_size(session)
            step = max(1, -(-size // jobs))
            ranges = [(lo, min(size, lo + step - 1)) for lo in range(1, size + 1, step)] \
                or [(1, 0)]
            # fork: the workers start at once (no re-import); each opens connections of its
            # own and never touches this process's
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=len(ranges), mp_context=ctx) as pool:
                futures = [pool.submit(_leaves_worker, url, lo, hi) for lo, hi in ranges]
                structure_error: LedgerIntegrityError | None = None
                report: VerifyReport | None = None
                try:
                    report = verify(session, vkey=vkey, leaves=False)
                except LedgerIntegrityError as exc:
                    structure_error = exc
                bad = [s for s in (f.result() for f in futures) if s is not None]
        first_bad = min(bad) if bad else None
        if first_bad is not None and (structure_error is None or structure_error.seq is None
                                      or first_bad < structure_error.seq):
            raise LedgerIntegrityError(
                f"entry {first_bad} does not match its leaf hash: its content was altered",
                seq=first_bad)
        if structure_error is not None:
            raise structure_error
        assert report is not None
        return report
    finally:
        engine.dispose()
