"""Reads audited off the request path (§11.3.4.1 d, §11.3.4.9 b–c).

Every view of clinical data is one ledger entry (``read.*``: who, what, when, from where). A
request does not write it: it appends the view to an in-process buffer (a list under a lock,
microseconds), and ``ReadAuditWorker`` writes what is buffered in one transaction every
``EDC_READ_AUDIT_FLUSH_SECONDS`` (1 s), or at once when ``EDC_READ_AUDIT_BATCH`` views wait,
and a last time when the server shuts down. So a page view holds no database writer for its
audit entry, and on SQLite many views share one write. The same transaction runs the
abnormal-access rules over the batch (``studies.oversight.service.observe``), which also see
the refusals ``edc.errors`` records.

The cost, stated in docs/audit.md: a process killed without shutting down loses the views
buffered since the last write (at most the flush window); the time of the view is kept in the
entry's reason, the entry's own time is when it was written.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from audit_trail.service import Ledger, canonical_ts
from studies.kernel.events import Action
from studies.oversight.service import Access, AccessRules, observe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadEvent:
    """One view of clinical data: becomes one ledger entry."""

    action: Action
    username: str
    entity_type: str
    entity_id: str
    at: dt.datetime
    study: str | None = None
    subject: str | None = None
    client: str | None = None
    what: str = ""  # the request, e.g. "GET /studies/S/entry/001/V1/DM"


@dataclass
class ReadBuffer:
    """The views and refusals not yet written; ``flush`` writes them in the caller's
    transaction."""

    rules: AccessRules = field(default_factory=AccessRules)
    batch: int = 500
    _reads: list[ReadEvent] = field(default_factory=list)
    _refusals: list[Access] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    full: threading.Event = field(default_factory=threading.Event)

    def record(self, event: ReadEvent) -> None:
        with self._lock:
            self._reads.append(event)
            if len(self._reads) >= self.batch:
                self.full.set()

    def refused(self, access: Access) -> None:
        """A refusal (already in the ledger): for the repeated-refusals rule."""
        with self._lock:
            self._refusals.append(access)

    def pending(self) -> int:
        with self._lock:
            return len(self._reads) + len(self._refusals)

    def take(self) -> tuple[list[ReadEvent], list[Access]]:
        with self._lock:
            reads, self._reads = self._reads, []
            refusals, self._refusals = self._refusals, []
            self.full.clear()
        return reads, refusals

    def put_back(self, reads: list[ReadEvent], refusals: list[Access]) -> None:
        """A write that failed: keep its views for the next round."""
        with self._lock:
            self._reads[:0] = reads
            self._refusals[:0] = refusals

    def write(self, session: Session, ledger: Ledger, reads: list[ReadEvent],
              refusals: list[Access]) -> int:
        """Append one entry per view and run the abnormal-access rules, in ``session``'s
        transaction; returns the number of views written."""
        for r in reads:
            ledger.append(session, actor=r.username, action=r.action,
                          entity_type=r.entity_type, entity_id=r.entity_id[:200],
                          study=r.study, subject=r.subject, client=r.client,
                          reason=f"{r.what} at {canonical_ts(r.at)}"[:500])
        accesses = [Access(kind="read", username=r.username, at=r.at, client=r.client,
                           study=r.study, subject=r.subject) for r in reads]
        observe(session, ledger, accesses=accesses + refusals, rules=self.rules)
        return len(reads)

    def flush(self, session: Session, ledger: Ledger) -> int:
        """Write everything buffered in ``session``'s transaction (the caller commits)."""
        reads, refusals = self.take()
        if not reads and not refusals:
            return 0
        return self.write(session, ledger, reads, refusals)


class ReadAuditWorker:
    """The thread that writes the buffer every ``interval`` seconds (or when it is full)."""

    def __init__(self, buffer: ReadBuffer, sessions: sessionmaker[Session], ledger: Ledger,
                 *, interval: float) -> None:
        self.buffer, self.sessions, self.ledger, self.interval = buffer, sessions, ledger, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        reads, refusals = self.buffer.take()
        if not reads and not refusals:
            return 0
        try:
            with self.sessions() as s, s.begin():
                return self.buffer.write(s, self.ledger, reads, refusals)
        except Exception:
            log.exception("writing %d buffered reads failed; kept for the next round",
                          len(reads))
            self.buffer.put_back(reads, refusals)
            return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.buffer.full.wait(self.interval)
            self.run_once()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="read-audit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write what is left (shutdown)."""
        self._stop.set()
        self.buffer.full.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.run_once()
