"""JSON API of randomisation and unblinding (/api/v1): the scheme and list, randomising a
subject, allocations, unblinding with sign-off and emergency unblinding."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep, StateDep
from edc.errors import raises
from edc.policy import ApiRouter, requires
from edc.routes.bodies import ReasonIn, SignIn
from studies.kernel.errors import Locked
from studies.kernel.roles import Perm
from studies.randomisation import service as rnd
from studies.randomisation.schemas import (
    AllocationOut,
    ListImportedOut,
    SchemeIn,
    SchemeOut,
    UnblindingOut,
)

router = ApiRouter(prefix="/api/v1", tags=["lock, unlock, randomisation"])


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csv: str = Field(max_length=5_000_000, description="stratum,seq,arm")


class EmergencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=2000)
    username: str = Field(max_length=100)
    password: str = Field(max_length=1000)
    totp: str | None = Field(default=None, max_length=20)


def _alloc(v: rnd.AllocationView) -> dict[str, Any]:
    return {"subject": v.subject, "site": v.site, "stratum": v.stratum, "seq": v.seq,
            "arm": v.arm, "randomised_by": v.randomised_by, "randomised_at": v.randomised_at}


@router.put("/studies/{study}/randomisation/scheme", response_model=SchemeOut,
            dependencies=[requires(Perm.RANDOMISATION_MANAGE)])
def configure(study: str, body: SchemeIn, session: SessionDep, ledger: LedgerDep,
              actor: CurrentActor) -> dict[str, Any]:
    s = rnd.configure(session, ledger, actor=actor, study_code=study, data=body)
    return {"method": s.method, "arms": s.arms, "ratio": s.ratio,
            "block_sizes": s.block_sizes, "factors": s.factors}


@router.post("/studies/{study}/randomisation/list", response_model=ListImportedOut,
             dependencies=[requires(Perm.RANDOMISATION_MANAGE)])
def import_list(study: str, body: ListIn, session: SessionDep, ledger: LedgerDep,
                state: StateDep, actor: CurrentActor) -> dict[str, int]:
    return {"rows": rnd.import_list(session, ledger, actor=actor,
                                    keys=rnd.keys_from(state.keys.deid_key), study_code=study,
                                    text=body.csv)}


@router.post("/studies/{study}/subjects/{code}/randomise", status_code=201,
             response_model=AllocationOut, dependencies=[requires(Perm.RANDOMISE)],
             responses=raises(Locked))
def randomise(study: str, code: str, session: SessionDep, ledger: LedgerDep, state: StateDep,
              actor: CurrentActor) -> dict[str, Any]:
    return _alloc(rnd.randomise(session, ledger, actor=actor,
                                keys=rnd.keys_from(state.keys.deid_key), study_code=study,
                                subject_code=code))


@router.get("/studies/{study}/allocations", response_model=list[AllocationOut],
            dependencies=[requires(Perm.LOCK_READ)])
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


@router.post("/studies/{study}/unblinding", status_code=201, response_model=UnblindingOut,
             dependencies=[requires(Perm.UNBLIND_SIGN)])
def request_unblinding(study: str, body: ReasonIn, session: SessionDep, ledger: LedgerDep,
                       actor: CurrentActor) -> dict[str, Any]:
    return _unblinding(rnd.request_unblinding(session, ledger, actor=actor, study_code=study,
                                              reason=body.reason))


@router.post("/studies/{study}/unblinding/{unblinding_id}/sign", response_model=UnblindingOut,
             dependencies=[requires(Perm.UNBLIND_SIGN)])
def sign_unblinding(study: str, unblinding_id: str, body: SignIn, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor, auth: AuthDep) -> dict[str, Any]:
    return _unblinding(rnd.sign_unblinding(
        session, ledger, actor=actor, study_code=study, unblinding_id=unblinding_id,
        role=body.role, username=body.username, password=body.password, totp=body.totp,
        config=auth))


@router.post("/studies/{study}/subjects/{code}/emergency-unblinding", response_model=AllocationOut,
             dependencies=[requires(Perm.UNBLIND_EMERGENCY)])
def emergency_unblind(study: str, code: str, body: EmergencyIn, session: SessionDep,
                      ledger: LedgerDep, state: StateDep, actor: CurrentActor,
                      auth: AuthDep) -> dict[str, Any]:
    """Emergency unblinding of one subject by the PI (signed, loudly audited)."""
    return _alloc(rnd.emergency_unblind(
        session, ledger, actor=actor, keys=rnd.keys_from(state.keys.deid_key), study_code=study,
        subject_code=code, reason=body.reason, username=body.username, password=body.password,
        totp=body.totp, config=auth))
