"""Where a request's blocking work (the database) runs: ``request_work``.

On SQLite a ``quick`` request (``edc.routing.quick``: a form opened, checked or saved), once
its transaction is begun, runs its work right on the event loop thread (``ON_LOOP``, set by
``edc.sessions``): SQLite's calls are in-process and, with the transaction begun, wait for no
other connection, and a worker thread costs more than the work — each of its statements hands
the GIL to the event loop and back (docs/benchmarks-entry.md, "Fifth round"). Everything else
runs in a worker thread (``in_thread``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

ON_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("edc_on_loop", default=False)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in one of anyio's worker threads (FastAPI's own), with the caller's
    context variables; a cancelled caller still waits for it to finish. Each call has a
    capacity limiter of its own, as FastAPI gives a dependency's exit: work that holds a
    database slot never waits for a thread (the slots, ``edc.state``, bound how many run)."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=anyio.CapacityLimiter(1))


async def request_work(fn: Callable[..., T], *args: Any) -> T:
    """A request's database work: on the event loop thread for a quick request on SQLite
    whose transaction is begun (``ON_LOOP``), else in a worker thread."""
    if ON_LOOP.get():
        return fn(*args)
    return await in_thread(fn, *args)
