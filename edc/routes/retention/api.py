"""JSON API of the retention review (/api/v1): a study's end date, the list of reviews due,
and the signed review decision (§11.3.4.6 a4)."""

from __future__ import annotations

from typing import Any

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep
from edc.errors import raises
from edc.policy import ApiRouter, requires
from edc.routes.clock import now
from studies.kernel.errors import Conflict, NotAuthenticated
from studies.kernel.roles import Perm
from studies.retention import service as retention
from studies.retention.schemas import DueReviewOut, EndDateIn, EndDateOut, ReviewIn, ReviewOut

router = ApiRouter(prefix="/api/v1", tags=["retention review"])


@router.put("/studies/{study}/end-date", response_model=EndDateOut,
            dependencies=[requires(Perm.STUDY_MANAGE)], responses=raises(Conflict))
def set_end_date(study: str, body: EndDateIn, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> dict[str, Any]:
    row = retention.set_end_date(session, ledger, actor=actor, study_code=study,
                                 ended_on=body.ended_on, reason=body.reason,
                                 today=now().date())
    return {"study": study, "ended_on": row.ended_on,
            "first_review_due": retention.review_due(row.ended_on, 1)}


@router.get("/retention/due", response_model=list[DueReviewOut],
            dependencies=[requires(Perm.RETENTION_REVIEW)])
def due(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return [{"study": d.study.code, "title_en": d.study.title_en, "title_zh": d.study.title_zh,
             "ended_on": d.ended_on, "due_on": d.due_on, "review_number": d.review_number,
             "last_decision": d.last_decision}
            for d in retention.due_reviews(session, actor=actor, today=now().date())]


@router.post("/studies/{study}/retention-reviews", response_model=ReviewOut,
             dependencies=[requires(Perm.RETENTION_REVIEW)],
             responses=raises(Conflict, NotAuthenticated))
def decide(study: str, body: ReviewIn, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor, auth: AuthDep) -> dict[str, Any]:
    row, line, next_due = retention.decide(
        session, ledger, actor=actor, study_code=study, due_on=body.due_on,
        decision=body.decision, reason=body.reason, username=body.username,
        password=body.password, totp=body.totp, today=now().date(), config=auth)
    return {"study": study, "due_on": row.due_on, "decision": row.decision,
            "reason": row.reason, "decided_by": row.decided_by, "decided_at": row.decided_at,
            "signature": line, "next_review_due": next_due}
