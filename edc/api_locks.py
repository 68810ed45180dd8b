"""JSON API for database lock and unlock, the team inbox, randomisation and unblinding
(/api/v1). Thin: parse, call one domain function, shape the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep, StateDep
from edc.policy import authenticated, requires
from studies.kernel.roles import Perm, Role
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.randomisation import service as rnd
from studies.signoff import service as sign_off

router = APIRouter(prefix="/api/v1", tags=["lock, unlock, randomisation"])


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    totp: str | None = Field(default=None, max_length=20)
    content_sha256: str | None = Field(default=None, max_length=64,
                                       description="hash of the text you were shown")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=4000)


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allow_query_answers: bool


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csv: str = Field(max_length=5_000_000, description="stratum,seq,arm")


class EmergencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=2000)
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    totp: str | None = Field(default=None, max_length=20)


def _panel(p: dict[str, Any]) -> dict[str, Any]:
    return {"locks": [locks.lock_public(lk) for lk in p["locks"]],
            "unlock_requests": [locks.request_public(r) for r in p["requests"]],
            "settings": {"allow_query_answers": p["settings"].allow_query_answers}}


@router.get("/studies/{study}/locks", dependencies=[requires(Perm.LOCK_READ)])
def lock_panel(study: str, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, Any]:
    return _panel(locks.panel(session, ledger, actor=actor, study_code=study))


@router.post("/studies/{study}/locks/report", dependencies=[requires(Perm.LOCK_MANAGE)])
def prelock_report(study: str, body: lock_schemas.LockIn, session: SessionDep,
                   actor: CurrentActor) -> list[dict[str, Any]]:
    """The pre-lock report for the locks ``body`` would set (nothing is written)."""
    return locks.prelock_report(session, actor=actor, study_code=study, data=body)


@router.post("/studies/{study}/locks", status_code=201,
             dependencies=[requires(Perm.LOCK_MANAGE)])
def set_locks(study: str, body: lock_schemas.LockIn, session: SessionDep, ledger: LedgerDep,
              actor: CurrentActor) -> list[dict[str, Any]]:
    """Lock (in bulk: one lock per site or form listed, one for a list of subjects)."""
    return [locks.lock_public(lk) for lk in
            locks.set_locks(session, ledger, actor=actor, study_code=study, data=body)]


@router.put("/studies/{study}/lock-settings", dependencies=[requires(Perm.LOCK_MANAGE)])
def lock_settings(study: str, body: SettingsIn, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, bool]:
    s = locks.update_settings(session, ledger, actor=actor, study_code=study,
                              allow_query_answers=body.allow_query_answers)
    return {"allow_query_answers": s.allow_query_answers}


@router.post("/studies/{study}/unlocks", status_code=201,
             dependencies=[requires(Perm.UNLOCK_REQUEST)])
def request_unlock(study: str, body: lock_schemas.UnlockIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, Any]:
    return locks.request_public(
        locks.request_unlock(session, ledger, actor=actor, study_code=study, data=body))


def _request(v: dict[str, Any]) -> dict[str, Any]:
    return {**locks.request_public(v["request"]), "content": v["content"],
            "content_ok": v["content_ok"],
            "signoffs": [{"role": s.role, "signature": s.line} for s in v["signoffs"]],
            "missing_roles": v["missing"], "invalidated_signatures": v["invalidated"]}


@router.get("/studies/{study}/unlocks/{request_id}", dependencies=[requires(Perm.LOCK_READ)])
def unlock_detail(study: str, request_id: str, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, Any]:
    """The request, the exact text signers sign (``content``) and its sign-offs."""
    return _request(locks.request_view(session, ledger, actor=actor, study_code=study,
                                       request_id=request_id))


@router.post("/studies/{study}/unlocks/{request_id}/sign",
             dependencies=[requires(Perm.UNLOCK_SIGN)])
def sign_unlock(study: str, request_id: str, body: SignIn, session: SessionDep,
                ledger: LedgerDep, actor: CurrentActor, auth: AuthDep) -> dict[str, Any]:
    return locks.request_public(locks.sign_unlock(
        session, ledger, actor=actor, study_code=study, request_id=request_id, role=body.role,
        username=body.username, password=body.password, totp=body.totp,
        content_hash=body.content_sha256, config=auth))


@router.post("/studies/{study}/unlocks/{request_id}/withdraw",
             dependencies=[requires(Perm.UNLOCK_REQUEST)])
def withdraw_unlock(study: str, request_id: str, body: ReasonIn, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return locks.request_public(locks.withdraw_unlock(
        session, ledger, actor=actor, study_code=study, request_id=request_id,
        reason=body.reason))


@router.post("/studies/{study}/unlocks/{request_id}/reject",
             dependencies=[requires(Perm.UNLOCK_SIGN)])
def reject_unlock(study: str, request_id: str, body: ReasonIn, session: SessionDep,
                  ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return locks.request_public(locks.reject_unlock(
        session, ledger, actor=actor, study_code=study, request_id=request_id,
        reason=body.reason))


@router.post("/studies/{study}/unlocks/{request_id}/relock",
             dependencies=[requires(Perm.LOCK_MANAGE)])
def relock(study: str, request_id: str, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor) -> dict[str, Any]:
    return locks.request_public(locks.relock(session, ledger, actor=actor, study_code=study,
                                             request_id=request_id))


@router.get("/inbox", dependencies=[authenticated()])
def inbox(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Messages for the studies on which you hold a role, newest first."""
    return [{"study": m.study, "kind": m.kind, "text": m.text, "link": m.link, "at": m.at,
             "by": m.by} for m in sign_off.inbox_for(session, actor=actor)]


# ---- randomisation ----------------------------------------------------------------------------

def _alloc(v: rnd.AllocationView) -> dict[str, Any]:
    return {"subject": v.subject, "site": v.site, "stratum": v.stratum, "seq": v.seq,
            "arm": v.arm, "randomised_by": v.randomised_by, "randomised_at": v.randomised_at}


@router.put("/studies/{study}/randomisation/scheme",
            dependencies=[requires(Perm.RANDOMISATION_MANAGE)])
def configure(study: str, body: rnd.SchemeIn, session: SessionDep, ledger: LedgerDep,
              actor: CurrentActor) -> dict[str, Any]:
    s = rnd.configure(session, ledger, actor=actor, study_code=study, data=body)
    return {"method": s.method, "arms": s.arms, "ratio": s.ratio,
            "block_sizes": s.block_sizes, "factors": s.factors}


@router.post("/studies/{study}/randomisation/list",
             dependencies=[requires(Perm.RANDOMISATION_MANAGE)])
def import_list(study: str, body: ListIn, session: SessionDep, ledger: LedgerDep,
                state: StateDep, actor: CurrentActor) -> dict[str, int]:
    return {"rows": rnd.import_list(session, ledger, actor=actor,
                                    keys=rnd.keys_from(state.keys.deid_key), study_code=study,
                                    text=body.csv)}


@router.post("/studies/{study}/subjects/{code}/randomise", status_code=201,
             dependencies=[requires(Perm.RANDOMISE)])
def randomise(study: str, code: str, session: SessionDep, ledger: LedgerDep, state: StateDep,
              actor: CurrentActor) -> dict[str, Any]:
    return _alloc(rnd.randomise(session, ledger, actor=actor,
                                keys=rnd.keys_from(state.keys.deid_key), study_code=study,
                                subject_code=code))


@router.get("/studies/{study}/allocations", dependencies=[requires(Perm.LOCK_READ)])
def allocations(study: str, session: SessionDep, state: StateDep,
                actor: CurrentActor) -> list[dict[str, Any]]:
    """Allocations; the arm reads "sealed" while the study is blinded."""
    return [_alloc(v) for v in rnd.allocations(session, actor=actor,
                                               keys=rnd.keys_from(state.keys.deid_key),
                                               study_code=study)]


def _unblinding(u: Any) -> dict[str, Any]:
    return {"id": u.id, "kind": u.kind, "status": u.status, "reason": u.reason,
            "requested_by": u.requested_by, "requested_at": u.requested_at,
            "effective_at": u.effective_at, "content_sha256": u.content_hash}


@router.post("/studies/{study}/unblinding", status_code=201,
             dependencies=[requires(Perm.UNBLIND_SIGN)])
def request_unblinding(study: str, body: ReasonIn, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor) -> dict[str, Any]:
    return _unblinding(rnd.request_unblinding(session, ledger, actor=actor, study_code=study,
                                              reason=body.reason))


@router.post("/studies/{study}/unblinding/{unblinding_id}/sign",
             dependencies=[requires(Perm.UNBLIND_SIGN)])
def sign_unblinding(study: str, unblinding_id: str, body: SignIn, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor, auth: AuthDep) -> dict[str, Any]:
    return _unblinding(rnd.sign_unblinding(
        session, ledger, actor=actor, study_code=study, unblinding_id=unblinding_id,
        role=body.role, username=body.username, password=body.password, totp=body.totp,
        config=auth))


@router.post("/studies/{study}/subjects/{code}/emergency-unblinding",
             dependencies=[requires(Perm.UNBLIND_EMERGENCY)])
def emergency_unblind(study: str, code: str, body: EmergencyIn, session: SessionDep,
                      ledger: LedgerDep, state: StateDep, actor: CurrentActor,
                      auth: AuthDep) -> dict[str, Any]:
    """Emergency unblinding of one subject by the PI (signed, loudly audited)."""
    return _alloc(rnd.emergency_unblind(
        session, ledger, actor=actor, keys=rnd.keys_from(state.keys.deid_key), study_code=study,
        subject_code=code, reason=body.reason, username=body.username, password=body.password,
        totp=body.totp, config=auth))


