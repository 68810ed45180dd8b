"""JSON API of the study registry (/api/v1): studies, protocol versions, sites and a
study's readiness.

Thin routes: parse, call one domain function, shape the answer. Every route declares its
policy; a ``{study}`` path parameter scopes the permission to that study.
"""

from __future__ import annotations

from typing import Any

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import ApiRouter, authenticated, requires
from edc.routes.clock import now
from studies.consent import service as consent
from studies.consent.schemas import ReadinessOut
from studies.kernel.roles import Perm
from studies.overview import service as overview
from studies.overview.schemas import AmendmentIn, StudyOverviewOut
from studies.registry import service as registry
from studies.registry.schemas import ProtocolVersionOut, SiteIn, SiteOut, StudyIn, StudyOut

router = ApiRouter(prefix="/api/v1", tags=["studies"])


@router.get("/studies", response_model=list[StudyOut], dependencies=[authenticated()])
def list_studies(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return [registry.study_public(s) for s in registry.list_studies(session, actor=actor)]


@router.post("/studies", status_code=201, response_model=StudyOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def register_study(body: StudyIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, Any]:
    return registry.study_public(registry.register_study(session, ledger, actor=actor,
                                                        data=body))


@router.get("/studies/{study}", response_model=StudyOverviewOut,
            dependencies=[requires(Perm.STUDY_READ)])
def get_study(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.study_overview(session, actor=actor, study_code=study, at=now())


@router.post("/studies/{study}/protocol-versions", status_code=201,
             response_model=ProtocolVersionOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def amend_protocol(study: str, body: AmendmentIn, session: SessionDep,
                   ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.amend(session, ledger, actor=actor, study_code=study, data=body)


@router.post("/studies/{study}/sites", status_code=201, response_model=SiteOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def add_site(study: str, body: SiteIn, session: SessionDep, ledger: LedgerDep,
             actor: CurrentActor) -> dict[str, Any]:
    return registry.site_public(registry.add_site(session, ledger, actor=actor,
                                                  study_code=study, site=body))


@router.get("/studies/{study}/readiness", response_model=ReadinessOut,
            dependencies=[requires(Perm.STUDY_READ)])
def readiness(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return consent.study_readiness(session, study_code=study, at=now())
