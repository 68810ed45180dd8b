"""The route class of every router: a plain ``def`` endpoint runs in a worker thread in one hop.

FastAPI runs a plain ``def`` endpoint in a worker thread, then validates its response in a
second worker-thread hop (``fastapi.routing.serialize_response``), and the request's
transaction is committed in a third (``edc.sessions``); each hop costs ~0.15 ms of CPU
(docs/benchmarks-entry.md). ``Route`` presents such an endpoint to FastAPI as a coroutine that
runs the function in a worker thread and, in that same thread, commits the request's
transaction as soon as it returns (``edc.sessions.commit_now``); the response is then
validated in the event loop (CPU work either way). The function, its signature and its
documentation are unchanged. An endpoint that raises is rolled back as before.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from edc.sessions import commit_now


def in_worker_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a coroutine function that runs it, then commits the request's transaction, in
    a worker thread (``functools.wraps`` keeps what FastAPI reads: the signature, the
    annotations' module, name and docstring)."""

    def call_and_commit(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        commit_now()
        return result

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(call_and_commit, *args, **kwargs)

    return run


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.isfunction(endpoint) and not (
                inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint)
                or inspect.isasyncgenfunction(endpoint)):
            endpoint = in_worker_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)
