"""The background builder: a thread that builds queued extracts one at a time.

Each build runs in its own transaction; progress is written in short transactions of its own so
that the page and the API can show it. A build that fails is rolled back whole (no package file
is left: :func:`studies.extracts.build.build` writes into a scratch directory and moves the
package into place only at the end) and the request records why it failed.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.extracts import build as builder
from studies.extracts.errors import BuildError
from studies.extracts.models import ExtractRequest
from studies.extracts.service import LIVE_PROGRESS as _progress
from studies.kernel.errors import DomainError
from studies.kernel.events import Action

log = logging.getLogger(__name__)


def _set(sessions: sessionmaker[Session], request_id: str, **values: object) -> None:
    with sessions() as s, s.begin():
        req = s.get(ExtractRequest, request_id)
        if req is not None:
            for k, v in values.items():
                setattr(req, k, v)


def run_one(sessions: sessionmaker[Session], ledger: Ledger, *, request_id: str,
            keys: builder.BuildKeys, out_dir: Path) -> bool:
    """Build one queued request; True if it succeeded."""
    _set(sessions, request_id, build_state="running", progress=1)
    _progress[request_id] = 1
    try:
        with sessions() as s, s.begin():
            builder.build(s, ledger, request_id=request_id, keys=keys, out_dir=out_dir,
                          progress=lambda p: _progress.__setitem__(request_id, p))
        return True
    except (BuildError, DomainError, ValueError, OSError) as e:
        message = str(e)[:2000]
    except Exception as e:  # noqa: BLE001 - a build never takes the worker down
        log.exception("extract build %s failed", request_id)
        message = f"internal error: {e.__class__.__name__}"
    finally:
        _progress.pop(request_id, None)
    with sessions() as s, s.begin():
        req = s.get(ExtractRequest, request_id)
        if req is not None:
            req.build_state, req.build_error, req.progress = "failed", message, 0
            ledger.append(s, actor=req.build_requested_by or "system",
                          action=Action.EXTRACT_BUILD, entity_type="extract_request",
                          entity_id=req.id, study=req.study_code, outcome="failure",
                          reason=message[:500],
                          changes=[Change("build_state", "running", "failed")])
    return False


def run_queued(sessions: sessionmaker[Session], ledger: Ledger, *, keys: builder.BuildKeys,
               out_dir: Path) -> int:
    """Build every queued request; returns how many were attempted."""
    n = 0
    while True:
        with sessions() as s:
            rid = s.execute(select(col(ExtractRequest.id)).where(
                col(ExtractRequest.build_state) == "queued").limit(1)).scalar_one_or_none()
        if rid is None:
            return n
        run_one(sessions, ledger, request_id=rid, keys=keys, out_dir=out_dir)
        n += 1


class BuildWorker(threading.Thread):
    """Polls for queued builds every ``interval`` seconds (or when woken)."""

    def __init__(self, sessions: sessionmaker[Session], ledger: Ledger, *,
                 keys: builder.BuildKeys, out_dir: Path, interval: float = 2.0) -> None:
        super().__init__(name="extract-builder", daemon=True)
        self.sessions, self.ledger, self.keys, self.out_dir = sessions, ledger, keys, out_dir
        self.interval = interval
        self._wake = threading.Event()
        self._halt = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                run_queued(self.sessions, self.ledger, keys=self.keys, out_dir=self.out_dir)
            except Exception:  # noqa: BLE001
                log.exception("extract worker loop")
            self._wake.wait(self.interval)
            self._wake.clear()
