"""JSON API of the job queue under /api/v1, for the operator's monitoring (``jobs.read``)."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from edc.deps import CurrentActor, SessionDep
from edc.policy import ApiRouter, requires
from studies.jobs import service as jobs
from studies.jobs.schemas import JobsOut
from studies.kernel.roles import Perm

router = ApiRouter(prefix="/api/v1")


@router.get("/jobs", response_model=JobsOut, dependencies=[requires(Perm.JOBS_READ)])
def list_jobs(session: SessionDep, actor: CurrentActor,
              state: str | None = Query(None, max_length=10),
              limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    view = jobs.overview(session, actor=actor, state=state, limit=limit)
    return {"counts": view.counts, "oldest_queued": view.oldest_queued, "stalled": view.stalled,
            "runners": [{"name": n, "heartbeat_at": t} for n, t in view.runners],
            "jobs": [{**j.model_dump(), "progress": jobs.progress_of(j)} for j in view.jobs]}
