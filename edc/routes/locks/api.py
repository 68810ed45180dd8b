"""JSON API of database lock and unlock (/api/v1): the lock panel and pre-lock report, locks,
unlock requests with their sign-off, re-locking, and the team inbox."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep
from edc.policy import ApiRouter, authenticated, requires
from edc.routes.bodies import ReasonIn, SignIn
from studies.kernel.roles import Perm
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.locks import unlock as unlocks
from studies.locks.schemas import (
    LockOut,
    LockPanelOut,
    LockSettingsOut,
    PrelockReportOut,
    UnlockDetailOut,
    UnlockRequestOut,
)
from studies.signoff import service as sign_off
from studies.signoff.schemas import InboxItemOut

router = ApiRouter(prefix="/api/v1", tags=["lock, unlock, randomisation"])


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allow_query_answers: bool


def _panel(p: dict[str, Any]) -> dict[str, Any]:
    return {"locks": [locks.lock_public(lk) for lk in p["locks"]],
            "unlock_requests": [unlocks.request_public(r) for r in p["requests"]],
            "settings": {"allow_query_answers": p["settings"].allow_query_answers}}


@router.get("/studies/{study}/locks", response_model=LockPanelOut,
            dependencies=[requires(Perm.LOCK_READ)])
def lock_panel(study: str, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, Any]:
    return _panel(unlocks.panel(session, ledger, actor=actor, study_code=study))


@router.post("/studies/{study}/locks/report", response_model=list[PrelockReportOut],
             dependencies=[requires(Perm.LOCK_MANAGE)])
def prelock_report(study: str, body: lock_schemas.LockIn, session: SessionDep,
                   actor: CurrentActor) -> list[dict[str, Any]]:
    """The pre-lock report for the locks ``body`` would set (nothing is written)."""
    return locks.prelock_report(session, actor=actor, study_code=study, data=body)


@router.post("/studies/{study}/locks", status_code=201, response_model=list[LockOut],
             dependencies=[requires(Perm.LOCK_MANAGE)])
def set_locks(study: str, body: lock_schemas.LockIn, session: SessionDep, ledger: LedgerDep,
              actor: CurrentActor) -> list[dict[str, Any]]:
    """Lock (in bulk: one lock per site or form listed, one for a list of subjects)."""
    return [locks.lock_public(lk) for lk in
            locks.set_locks(session, ledger, actor=actor, study_code=study, data=body)]


@router.put("/studies/{study}/lock-settings", response_model=LockSettingsOut,
            dependencies=[requires(Perm.LOCK_MANAGE)])
def lock_settings(study: str, body: SettingsIn, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, bool]:
    s = locks.update_settings(session, ledger, actor=actor, study_code=study,
                              allow_query_answers=body.allow_query_answers)
    return {"allow_query_answers": s.allow_query_answers}


@router.post("/studies/{study}/unlocks", status_code=201, response_model=UnlockRequestOut,
             dependencies=[requires(Perm.UNLOCK_REQUEST)])
def request_unlock(study: str, body: lock_schemas.UnlockIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, Any]:
    return unlocks.request_public(
        unlocks.request_unlock(session, ledger, actor=actor, study_code=study, data=body))


def _request(v: dict[str, Any]) -> dict[str, Any]:
    return {**unlocks.request_public(v["request"]), "content": v["content"],
            "content_ok": v["content_ok"],
            "signoffs": [{"role": s.role, "signature": s.line} for s in v["signoffs"]],
            "missing_roles": v["missing"], "invalidated_signatures": v["invalidated"]}


@router.get("/studies/{study}/unlocks/{request_id}", response_model=UnlockDetailOut,
            dependencies=[requires(Perm.LOCK_READ)])
def unlock_detail(study: str, request_id: str, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, Any]:
    """The request, the exact text signers sign (``content``) and its sign-offs."""
    return _request(unlocks.request_view(session, ledger, actor=actor, study_code=study,
                                       request_id=request_id))


@router.post("/studies/{study}/unlocks/{request_id}/sign", response_model=UnlockRequestOut,
             dependencies=[requires(Perm.UNLOCK_SIGN)])
def sign_unlock(study: str, request_id: str, body: SignIn, session: SessionDep,
                ledger: LedgerDep, actor: CurrentActor, auth: AuthDep) -> dict[str, Any]:
    return unlocks.request_public(unlocks.sign_unlock(
        session, ledger, actor=actor, study_code=study, request_id=request_id, role=body.role,
        username=body.username, password=body.password, totp=body.totp,
        content_hash=body.content_sha256, config=auth))


@router.post("/studies/{study}/unlocks/{request_id}/withdraw", response_model=UnlockRequestOut,
             dependencies=[requires(Perm.UNLOCK_REQUEST)])
def withdraw_unlock(study: str, request_id: str, body: ReasonIn, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return unlocks.request_public(unlocks.withdraw_unlock(
        session, ledger, actor=actor, study_code=study, request_id=request_id,
        reason=body.reason))


@router.post("/studies/{study}/unlocks/{request_id}/reject", response_model=UnlockRequestOut,
             dependencies=[requires(Perm.UNLOCK_SIGN)])
def reject_unlock(study: str, request_id: str, body: ReasonIn, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return unlocks.request_public(unlocks.reject_unlock(
        session, ledger, actor=actor, study_code=study, request_id=request_id,
        reason=body.reason))


@router.post("/studies/{study}/unlocks/{request_id}/relock", response_model=UnlockRequestOut,
             dependencies=[requires(Perm.LOCK_MANAGE)])
def relock(study: str, request_id: str, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor) -> dict[str, Any]:
    return unlocks.request_public(unlocks.relock(session, ledger, actor=actor, study_code=study,
                                             request_id=request_id))


@router.get("/inbox", response_model=list[InboxItemOut], dependencies=[authenticated()])
def inbox(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Messages for the studies on which you hold a role, newest first."""
    return [{"study": m.study, "kind": m.kind, "text": m.text, "link": m.link, "at": m.at,
             "by": m.by} for m in sign_off.inbox_for(session, actor=actor)]
