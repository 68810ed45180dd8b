"""Where a request's blocking work (the database) runs: ``request_work``.

A ``quick`` request (``edc.routing.quick``: a form opened, checked or saved), once its
transaction is begun, runs its work right on the event loop thread (``ON_LOOP``, set by
``edc.sessions``): a worker thread costs more than the work — each of its statements hands the
GIL to the event loop and back (docs/benchmarks-entry.md, "Fifth round"). On SQLite the calls
are in-process and, with the transaction begun, wait for no other connection. On PostgreSQL
(one request transaction per web process, ``edc.db.runs_on_loop``) a row lock is waited for at
most briefly on the loop; if that is not enough, the transaction is rolled back and the
request's work so far is redone, and the rest done, in a worker thread, where it waits
(``OnLoop``). Everything else runs in a worker thread (``in_thread``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


@dataclass
class OnLoop:
    """A quick request whose database work runs on the event loop thread."""

    # Whether an error means: the work must wait, off the loop (``edc.db.lock_wait_too_long``)
    must_wait: Callable[[BaseException], bool]
    # Roll the request's transaction back, so that it can be done again from the start
    restart: Callable[[], None]
    # The work done so far on the loop, in order: redone first in the worker thread
    done: list[tuple[Callable[..., Any], tuple[Any, ...]]] = field(default_factory=list)


ON_LOOP: contextvars.ContextVar[OnLoop | None] = contextvars.ContextVar("edc_on_loop",
                                                                        default=None)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in one of anyio's worker threads (FastAPI's own), with the caller's
    context variables; a cancelled caller still waits for it to finish. Each call has a
    capacity limiter of its own, as FastAPI gives a dependency's exit: work that holds a
    database slot never waits for a thread (the slots, ``edc.state``, bound how many run)."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=anyio.CapacityLimiter(1))


async def request_work(fn: Callable[..., T], *args: Any) -> T:
    """A request's database work: on the event loop thread for a quick request whose
    transaction is begun (``ON_LOOP``), else in a worker thread. Work on the loop that must
    wait for a lock (``OnLoop.must_wait``) is moved: the transaction is rolled back, and in a
    worker thread the request's earlier work is redone (their results were already used;
    what they wrote is written again), then ``fn``; the request's later work runs in worker
    threads too."""
    on_loop = ON_LOOP.get()
    if on_loop is None:
        return await in_thread(fn, *args)
    try:
        result = fn(*args)
    except Exception as exc:
        if not on_loop.must_wait(exc):
            raise
        on_loop.restart()
        ON_LOOP.set(None)
        return await in_thread(_redo, on_loop.done, fn, args)
    on_loop.done.append((fn, args))
    return result


def _redo(done: list[tuple[Callable[..., Any], tuple[Any, ...]]], fn: Callable[..., T],
          args: tuple[Any, ...]) -> T:
    for earlier, earlier_args in done:
        earlier(*earlier_args)
    return fn(*args)
