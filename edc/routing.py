"""The route class of every router: a plain ``def`` endpoint runs in a worker thread in one hop
(``edc.threads.in_thread``).

FastAPI runs a plain ``def`` endpoint in a worker thread, then validates its response in a
second worker-thread hop (``fastapi.routing.serialize_response``), and the request's
transaction is committed in a third (``edc.sessions``); each hop costs CPU
(docs/benchmarks-entry.md). ``Route`` presents such an endpoint to FastAPI as a coroutine that
runs the function in a worker thread and, in that same thread, commits the request's
transaction as soon as it returns (``edc.sessions.commit_now``); the response is then
validated in the event loop (CPU work either way). The function, its signature and its
documentation are unchanged. An endpoint that raises is rolled back as before.

An endpoint marked ``@quick`` (under the route decorator) runs, with its commit, on the event
loop thread instead once its transaction is begun, where ``edc.db.runs_on_loop`` allows
(``edc.threads.request_work``, docs/architecture.md "Quick routes").
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from edc.sessions import commit_now
from edc.threads import request_work

QUICK = "edc_quick"


def quick(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an endpoint whose work is a few short statements (a form opened or saved): it runs
    on the event loop thread once its transaction is begun, where ``edc.db.runs_on_loop``
    allows; elsewhere, and for every other endpoint, in a worker thread. Its work may be
    done twice, its transaction rolled back in between (``edc.threads.request_work``): it
    must do nothing outside the database that doing it again would spoil."""
    setattr(fn, QUICK, True)
    return fn


def in_worker_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a coroutine function that runs it, then commits the request's transaction, in
    a worker thread or, for a quick request, on the event loop (``functools.wraps``
    keeps what FastAPI reads: the signature, the annotations' module, name and docstring, and
    the ``quick`` mark)."""

    def call_and_commit(kwargs: dict[str, Any]) -> Any:
        result = fn(**kwargs)
        commit_now()
        return result

    @functools.wraps(fn)
    async def run(**kwargs: Any) -> Any:  # FastAPI passes every argument by name
        return await request_work(call_and_commit, kwargs)

    return run


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.isfunction(endpoint) and not (
                inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint)
                or inspect.isasyncgenfunction(endpoint)):
            endpoint = in_worker_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)
        self.quick = bool(getattr(endpoint, QUICK, False))
