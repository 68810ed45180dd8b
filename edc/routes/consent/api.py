"""JSON API of consent (/api/v1): consent forms, consent records and withdrawals, and what a
subject's consent allows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Query

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.errors import raises
from edc.policy import ApiRouter, requires
from edc.routes.clock import now
from studies.consent import service as consent
from studies.consent.schemas import (
    ConsentFormIn,
    ConsentFormOut,
    ConsentHistoryOut,
    ConsentIn,
    ConsentRecordedOut,
    WithdrawalIn,
    WithdrawnOut,
)
from studies.kernel.errors import Locked
from studies.kernel.roles import Perm
from studies.overview import service as overview
from studies.overview.schemas import ConsentOverviewOut, UseDecisionOut

router = ApiRouter(prefix="/api/v1", tags=["studies"])


@router.post("/studies/{study}/consent-forms", status_code=201, response_model=ConsentFormOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def add_consent_form(study: str, body: ConsentFormIn, session: SessionDep,
                     ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return consent.consent_form_public(consent.add_consent_form(
        session, ledger, actor=actor, study_code=study, data=body))


@router.get("/studies/{study}/consent", response_model=ConsentOverviewOut,
            dependencies=[requires(Perm.CONSENT_READ)])
def consent_list(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.consent_overview(session, actor=actor, study_code=study, at=now())


@router.post("/studies/{study}/subjects/{subject_id}/consents", status_code=201,
             response_model=ConsentRecordedOut, dependencies=[requires(Perm.CONSENT_RECORD)],
             responses=raises(Locked))
def record_consent(study: str, subject_id: str, body: ConsentIn, session: SessionDep,
                   ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    rec = consent.record_consent(session, ledger, actor=actor, study_code=study,
                                 subject_id=subject_id, data=body)
    return {"id": rec.id, "consent_type": rec.consent_type, "scopes": rec.scopes,
            "given_at": rec.given_at.isoformat(), "obtained_by": rec.obtained_by,
            "replaces_id": rec.replaces_id}


@router.get("/studies/{study}/subjects/{subject_id}/consents",
            response_model=list[ConsentHistoryOut],
            dependencies=[requires(Perm.CONSENT_READ)])
def consent_history(study: str, subject_id: str, session: SessionDep,
                    actor: CurrentActor) -> list[dict[str, Any]]:
    return consent.consent_history(session, actor=actor, study_code=study,
                                   subject_id=subject_id)


@router.post("/studies/{study}/consents/{consent_id}/withdrawals", status_code=201,
             response_model=WithdrawnOut,
             dependencies=[requires(Perm.CONSENT_RECORD)])
def withdraw(study: str, consent_id: str, body: WithdrawalIn, session: SessionDep,
             ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    ws = consent.withdraw_consent(session, ledger, actor=actor, study_code=study,
                                  consent_id=consent_id, data=body)
    return {"withdrawn": ["whole" if w.scope is None else w.scope for w in ws],
            "withdrawn_at": ws[0].withdrawn_at.isoformat()}


@router.get("/studies/{study}/subjects/{subject_id}/may-use", response_model=UseDecisionOut,
            dependencies=[requires(Perm.CONSENT_READ)])
def may_use(study: str, subject_id: str, session: SessionDep, actor: CurrentActor,
            scope: str = Query(max_length=30),
            at: dt.datetime | None = None) -> dict[str, Any]:
    return overview.use_decision(session, actor=actor, study_code=study, subject_id=subject_id,
                                 scope=scope, at=at or now())
