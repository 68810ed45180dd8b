"""JSON API of the ethics committee's desk (/api/v1): committees and members, approvals,
consent waivers and their decisions."""

from __future__ import annotations

from typing import Any

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import ApiRouter, requires
from edc.routes.clock import now
from studies.ethics import service as ethics
from studies.ethics.schemas import (
    ApprovalIn,
    ApprovalOut,
    CommitteeIn,
    CommitteeOut,
    MemberIn,
    MemberOut,
    WaiverDecisionIn,
    WaiverIn,
    WaiverOut,
)
from studies.kernel.roles import Perm
from studies.kernel.schemas import StatusOut
from studies.overview import service as overview
from studies.overview.schemas import EthicsOverviewOut

router = ApiRouter(prefix="/api/v1", tags=["studies"])


@router.get("/ethics", response_model=EthicsOverviewOut,
            dependencies=[requires(Perm.ETHICS_RECORD)])
def ethics_desk(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.ethics_overview(session, actor=actor, at=now())


@router.post("/ethics/committees", status_code=201, response_model=CommitteeOut,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def create_committee(body: CommitteeIn, session: SessionDep, ledger: LedgerDep,
                     actor: CurrentActor) -> dict[str, Any]:
    c = ethics.create_committee(session, ledger, actor=actor, data=body)
    return ethics.committee_public(session, c)


@router.post("/ethics/committees/{committee_id}/members", status_code=201, response_model=MemberOut,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def add_member(committee_id: str, body: MemberIn, session: SessionDep,
               ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    m = ethics.add_member(session, ledger, actor=actor, committee_id=committee_id, data=body)
    return {"id": m.id, "name": m.name, "gender": m.gender, "affiliation": m.affiliation,
            "expertise": m.expertise, "active": m.active}


@router.post("/ethics/members/{member_id}/deactivate", response_model=StatusOut,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def deactivate_member(member_id: str, session: SessionDep, ledger: LedgerDep,
                      actor: CurrentActor) -> dict[str, str]:
    ethics.remove_member(session, ledger, actor=actor, member_id=member_id)
    return {"status": "inactive"}


@router.post("/studies/{study}/approvals", status_code=201, response_model=ApprovalOut,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def record_approval(study: str, body: ApprovalIn, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    a = ethics.record_approval(session, ledger, actor=actor, study_code=study, data=body)
    return ethics.approval_public(session, a)


@router.post("/studies/{study}/waivers", status_code=201, response_model=WaiverOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def request_waiver(study: str, body: WaiverIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, Any]:
    return ethics.waiver_public(ethics.request_waiver(session, ledger, actor=actor,
                                                      study_code=study, data=body))


@router.post("/studies/{study}/waivers/{waiver_id}/decision", response_model=WaiverOut,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def decide_waiver(study: str, waiver_id: str, body: WaiverDecisionIn,
                  session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return ethics.waiver_public(ethics.decide_waiver(session, ledger, actor=actor,
                                                     study_code=study, waiver_id=waiver_id,
                                                     data=body))
