"""JSON API of the audit trail under /api/v1: verify the ledger, its signed checkpoints, and
the auditor's search and export of the trail."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from audit_trail import service as ledger_service
from audit_trail.service import Ledger
from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep, read_stream
from edc.policy import ApiRouter, attachment, requires
from studies.accounts import audit
from studies.accounts.schemas import AuditPageOut, CheckpointsOut, LedgerVerifyOut
from studies.kernel.actor import Actor
from studies.kernel.roles import Perm
from studies.kernel.schemas import DB_BIGINT_MAX

router = ApiRouter(prefix="/api/v1")


@router.get("/audit/verify", response_model=LedgerVerifyOut,
            dependencies=[requires(Perm.AUDIT_VERIFY)])
def audit_verify(session: SessionDep, state: StateDep, actor: CurrentActor) -> dict[str, object]:
    report = ledger_service.verify(session, vkey=state.keys.signer.vkey)
    return {"intact": True, "entries": report.entries, "checkpoints": report.checkpoints,
            "redacted": report.redacted, "root": report.root.hex(), "summary": report.summary()}


@router.get("/audit/checkpoints", response_model=CheckpointsOut,
            dependencies=[requires(Perm.AUDIT_VERIFY)])
def audit_checkpoints(session: SessionDep, state: StateDep,
                      actor: CurrentActor) -> dict[str, object]:
    return {"verifier_key": state.keys.signer.vkey,
            "checkpoints": [{"tree_size": c.tree_size, "root_hash": c.root_hash.hex(),
                             "reason": c.reason, "note": c.note}
                            for c in ledger_service.list_checkpoints(session)]}


def audit_filter(user: str | None = Query(None, max_length=200),
                 action: str | None = Query(None, max_length=100),
                 study: str | None = Query(None, max_length=100),
                 subject: str | None = Query(None, max_length=100),
                 since: dt.datetime | None = None,
                 until: dt.datetime | None = None) -> audit.AuditFilter:
    def aware(d: dt.datetime | None) -> dt.datetime | None:
        return d.replace(tzinfo=dt.UTC) if d is not None and d.tzinfo is None else d

    return audit.AuditFilter(user=user or None, action=action or None, study=study or None,
                             subject=subject or None, since=aware(since), until=aware(until))


AuditFilterDep = Annotated[audit.AuditFilter, Depends(audit_filter)]


@router.get("/audit/entries", response_model=AuditPageOut, dependencies=[requires(Perm.AUDIT_READ)])
def api_audit_entries(filters: AuditFilterDep, session: SessionDep, actor: CurrentActor,
                      before_seq: int | None = Query(None, ge=1, le=DB_BIGINT_MAX),
                      limit: int = Query(100, ge=1, le=500)) -> dict[str, object]:
    rows = audit.search(session, actor=actor, filters=filters, before_seq=before_seq,
                        limit=limit)
    return {"entries": rows, "next_before_seq": rows[-1]["seq"] if len(rows) == limit else None}


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "odm": "application/xml"}


@router.get("/audit/export", dependencies=[requires(Perm.AUDIT_READ)],
            response_class=StreamingResponse, responses=attachment(*EXPORT_TYPES.values()))
def api_audit_export(request: Request, filters: AuditFilterDep, session: SessionDep,
                     ledger: LedgerDep,
                     actor: CurrentActor,
                     format: str = Query("csv", pattern="^(csv|odm)$")) -> StreamingResponse:
    return export_response(request, session, ledger, actor, filters, format)


def export_response(request: Request, session: Session, ledger: Ledger, actor: Actor,
                    filters: audit.AuditFilter, fmt: str) -> StreamingResponse:
    """The audit-trail export (API and page): its ledger entry commits with the request, before
    the response; the rows stream afterwards from a read-only session."""
    created = audit.record_export(session, ledger, actor=actor, filters=filters, fmt=fmt)
    chunks = read_stream(request, lambda s: audit.export_chunks(
        s, actor=actor, filters=filters, fmt=fmt, created=created))
    name = f"audit-trail.{'xml' if fmt == 'odm' else 'csv'}"
    return StreamingResponse(chunks, media_type=EXPORT_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
