"""Login rate limiting per account and per client address: a sliding window kept in memory.

One process holds one limiter (``AppState.login_limiter``). Lockout (5 failures in 15 minutes)
is kept in the ledger and so survives restarts and holds across processes; this limiter only
slows down bursts of attempts, failed or not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


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
            wait = self._hit(f"a:{account.lower()}", self.per_account, now)
            if wait is None and client:
                wait = self._hit(f"c:{client}", self.per_client, now)
            return wait
