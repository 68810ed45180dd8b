"""Login rate limiting per account and per client address: a sliding window.

Two limiters with one interface (``check``): :class:`RateLimiter` keeps the window in memory —
SQLite's one process (``edc serve`` on SQLite) — and :class:`SharedRateLimiter` keeps it in the
``login_throttle`` table, in a short transaction of its own per attempt, so that every web
process on PostgreSQL counts the same attempts (``AppState`` picks by database). Lockout
(5 failures in 15 minutes) is kept in the ledger and so holds across processes either way;
these limiters only slow down bursts of attempts, failed or not.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from audit_trail.base import utcnow
from studies.accounts.models import LoginThrottle


class LoginLimiter(Protocol):
    def check(self, *, account: str, client: str | None) -> float | None:
        """Record one attempt; None if allowed, else the seconds to wait."""


def _keys(account: str, client: str | None, per_account: int,
          per_client: int) -> list[tuple[str, int]]:
    keys = [(f"a:{account.lower()[:200]}", per_account)]
    if client:
        keys.append((f"c:{client[:200]}", per_client))
    return keys


class RateLimiter:
    def __init__(self, *, per_account: int = 10, per_client: int = 30, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_account = per_account
        self.per_client = per_client
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _hit(self, key: str, limit: int, now: float) -> float | None:
        q = self._hits.setdefault(key, deque())
        while q and now - q[0] >= self.window:
            q.popleft()
        if len(q) >= limit:
            return self.window - (now - q[0])
        q.append(now)
        return None

    def check(self, *, account: str, client: str | None) -> float | None:
        """Record one attempt; None if allowed, else the seconds to wait."""
        now = self.clock()
        with self._lock:
            if len(self._hits) > 100_000:  # bounded memory under a flood of distinct keys
                self._hits.clear()
            for key, limit in _keys(account, client, self.per_account, self.per_client):
                wait = self._hit(key, limit, now)
                if wait is not None:
                    return wait
            return None


class SharedRateLimiter:
    """The same sliding window in the database: each key's row is locked (``FOR UPDATE``) for
    the few statements of one check, so concurrent attempts through different processes are
    counted one after the other. Its own transaction: a refused login rolls the request's back,
    and the attempt must still count."""

    def __init__(self, sessions: sessionmaker[Session], *, per_account: int = 10,
                 per_client: int = 30, window: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.per_account = per_account
        self.per_client = per_client
        self.window = window
        self.clock = clock

    def _hit(self, s: Session, key: str, limit: int, now: float) -> float | None:
        ins = (postgresql.insert(LoginThrottle) if s.get_bind().dialect.name == "postgresql"
               else sqlite.insert(LoginThrottle))
        s.execute(ins.values(key=key, hits=[], updated_at=utcnow()).on_conflict_do_nothing())
        row = s.execute(select(LoginThrottle).where(col(LoginThrottle.key) == key)
                        .with_for_update()).scalar_one()
        hits = [h for h in row.hits if now - h < self.window]
        if len(hits) >= limit:
            return self.window - (now - hits[0])
        row.hits = [*hits, now]
        row.updated_at = utcnow()
        return None

    def check(self, *, account: str, client: str | None) -> float | None:
        """Record one attempt; None if allowed, else the seconds to wait."""
        now = self.clock()
        with self.sessions() as s, s.begin():
            for key, limit in _keys(account, client, self.per_account, self.per_client):
                wait = self._hit(s, key, limit, now)
                if wait is not None:
                    return wait
        return None


def prune(session: Session, *, window: float = 60.0, now: dt.datetime | None = None) -> int:
    """Delete the rows of keys not tried within the window (the sweep job); how many."""
    cutoff = (now or utcnow()) - dt.timedelta(seconds=window)
    result = session.execute(delete(LoginThrottle).where(col(LoginThrottle.updated_at) < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
