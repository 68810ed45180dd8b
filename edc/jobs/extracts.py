"""The extract builder: the handler of ``extract.build`` jobs (``edc/jobs/runner.py``).

Each build runs in one transaction that also marks its job done, so a build is committed once
or not at all: a runner killed mid-build leaves nothing (the package file is written into a
scratch directory and moved into place at the end, and a retried build replaces it), and a
runner that lost its claim rolls back instead of committing a second build. Progress goes to
the job (``JobContext.progress``) so the page and the API of any web process can show it. A
build that fails is rolled back whole and the request records why it failed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from audit_trail.service import Change
from edc.jobs.runner import JobContext
from studies.extracts import build as builder
from studies.extracts.models import ExtractRequest
from studies.kernel.events import Action


def build_keys(ctx: JobContext) -> builder.BuildKeys:
    k = ctx.state.keys
    return builder.BuildKeys(deid_key=k.deid_key, signing_key=k.signing_key,
                             code_index=k.code_index_keys())


def run_build(ctx: JobContext) -> None:
    request_id = str(ctx.payload["request_id"])
    state = ctx.state
    with state.sessions() as s, s.begin():
        req = s.get(ExtractRequest, request_id)
        if req is None or req.build_state not in ("queued", "running"):
            ctx.complete(s)  # cancelled or built meanwhile: nothing to do
            return
        req.build_state, req.progress = "running", 1
    ctx.progress(1)
    with state.sessions() as s, s.begin():
        builder.build(s, state.ledger, request_id=request_id, keys=build_keys(ctx),
                      out_dir=state.settings.extract_dir, progress=ctx.progress)
        ctx.complete(s)


def build_failed(ctx: JobContext, s: Session, message: str) -> None:
    req = s.get(ExtractRequest, str(ctx.payload.get("request_id")))
    if req is None:
        return
    before = req.build_state
    req.build_state, req.build_error, req.progress = "failed", message, 0
    ctx.state.ledger.append(s, actor=req.build_requested_by or "system",
                            action=Action.EXTRACT_BUILD, entity_type="extract_request",
                            entity_id=req.id, study=req.study_code, outcome="failure",
                            reason=message[:500],
                            changes=[Change("build_state", before, "failed")])
