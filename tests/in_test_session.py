"""Serve an app's requests in the test's session (rolled back after the test) instead of the
application's: ``app.dependency_overrides`` replaces ``edc.sessions.request_sessions``, which
the request's transaction, streamed downloads and refusals recorded in their own transaction
all come from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session

from edc.sessions import Sessions, request_sessions


class TestSessions:
    """Every session is the test's: a savepoint stands in for the request's transaction."""

    __test__ = False  # not a test class

    def __init__(self, session: Session) -> None:
        self.session = session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        session = self.session
        savepoint = session.begin_nested()
        try:
            yield session
            session.flush()
            savepoint.commit()
        except BaseException:
            savepoint.rollback()
            raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        yield self.session

    async def record(self, write: Callable[[Session], None]) -> None:
        write(self.session)  # inside the test's transaction


def use_test_session(app: FastAPI, session: Session) -> None:
    sessions = TestSessions(session)

    def provide(request: Request) -> Sessions:
        return sessions

    app.dependency_overrides[request_sessions] = provide
