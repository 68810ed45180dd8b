"""JSON API for studies, protocols, sites, ethics, consent and eCRF metadata (/api/v1).

Thin routes: parse, call one domain function, shape the answer. Every route declares its
policy; a ``{study}`` path parameter scopes the permission to that study.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.policy import authenticated, requires
from studies.consent import service as consent
from studies.ethics import service as ethics
from studies.forms import service as forms
from studies.kernel.roles import Perm
from studies.overview import service as overview
from studies.registry import service as registry

router = APIRouter(prefix="/api/v1", tags=["studies"])
MAX_IMPORT = 1_500_000


class RedcapImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csv: str = PField(min_length=1, max_length=MAX_IMPORT)


class OdmImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    xml: str = PField(min_length=1, max_length=MAX_IMPORT)


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, str | list[str] | None] = PField(max_length=2000)
    today: dt.date | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---- studies ------------------------------------------------------------------------------------

@router.get("/studies", dependencies=[authenticated()])
def list_studies(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return [registry.study_public(s) for s in registry.list_studies(session, actor=actor)]


@router.post("/studies", status_code=201, dependencies=[requires(Perm.STUDY_MANAGE)])
def register_study(body: registry.StudyIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, Any]:
    return registry.study_public(registry.register_study(session, ledger, actor=actor,
                                                        data=body))


@router.get("/studies/{study}", dependencies=[requires(Perm.STUDY_READ)])
def get_study(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.study_overview(session, actor=actor, study_code=study, at=_now())


@router.post("/studies/{study}/protocol-versions", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def amend_protocol(study: str, body: overview.AmendmentIn, session: SessionDep,
                   ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.amend(session, ledger, actor=actor, study_code=study, data=body)


@router.post("/studies/{study}/sites", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def add_site(study: str, body: registry.SiteIn, session: SessionDep, ledger: LedgerDep,
             actor: CurrentActor) -> dict[str, Any]:
    return registry.site_public(registry.add_site(session, ledger, actor=actor,
                                                  study_code=study, site=body))


@router.get("/studies/{study}/readiness", dependencies=[requires(Perm.STUDY_READ)])
def readiness(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return consent.study_readiness(session, study_code=study, at=_now())


# ---- ethics -------------------------------------------------------------------------------------

@router.get("/ethics", dependencies=[requires(Perm.ETHICS_RECORD)])
def ethics_desk(session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.ethics_overview(session, actor=actor, at=_now())


@router.post("/ethics/committees", status_code=201,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def create_committee(body: ethics.CommitteeIn, session: SessionDep, ledger: LedgerDep,
                     actor: CurrentActor) -> dict[str, Any]:
    c = ethics.create_committee(session, ledger, actor=actor, data=body)
    return ethics.committee_public(session, c)


@router.post("/ethics/committees/{committee_id}/members", status_code=201,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def add_member(committee_id: str, body: ethics.MemberIn, session: SessionDep,
               ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    m = ethics.add_member(session, ledger, actor=actor, committee_id=committee_id, data=body)
    return {"id": m.id, "name": m.name, "gender": m.gender, "affiliation": m.affiliation,
            "expertise": m.expertise, "active": m.active}


@router.post("/ethics/members/{member_id}/deactivate",
             dependencies=[requires(Perm.ETHICS_RECORD)])
def deactivate_member(member_id: str, session: SessionDep, ledger: LedgerDep,
                      actor: CurrentActor) -> dict[str, str]:
    ethics.remove_member(session, ledger, actor=actor, member_id=member_id)
    return {"status": "inactive"}


@router.post("/studies/{study}/approvals", status_code=201,
             dependencies=[requires(Perm.ETHICS_RECORD)])
def record_approval(study: str, body: ethics.ApprovalIn, session: SessionDep,
                    ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    a = ethics.record_approval(session, ledger, actor=actor, study_code=study, data=body)
    return ethics.approval_public(session, a)


@router.post("/studies/{study}/waivers", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def request_waiver(study: str, body: ethics.WaiverIn, session: SessionDep, ledger: LedgerDep,
                   actor: CurrentActor) -> dict[str, Any]:
    return ethics.waiver_public(ethics.request_waiver(session, ledger, actor=actor,
                                                      study_code=study, data=body))


@router.post("/studies/{study}/waivers/{waiver_id}/decision",
             dependencies=[requires(Perm.ETHICS_RECORD)])
def decide_waiver(study: str, waiver_id: str, body: ethics.WaiverDecisionIn,
                  session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return ethics.waiver_public(ethics.decide_waiver(session, ledger, actor=actor,
                                                     study_code=study, waiver_id=waiver_id,
                                                     data=body))


# ---- consent ------------------------------------------------------------------------------------

@router.post("/studies/{study}/consent-forms", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def add_consent_form(study: str, body: consent.ConsentFormIn, session: SessionDep,
                     ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return consent.consent_form_public(consent.add_consent_form(
        session, ledger, actor=actor, study_code=study, data=body))


@router.get("/studies/{study}/consent", dependencies=[requires(Perm.CONSENT_READ)])
def consent_list(study: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    return overview.consent_overview(session, actor=actor, study_code=study, at=_now())


@router.post("/studies/{study}/subjects/{subject_id}/consents", status_code=201,
             dependencies=[requires(Perm.CONSENT_RECORD)])
def record_consent(study: str, subject_id: str, body: consent.ConsentIn, session: SessionDep,
                   ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    rec = consent.record_consent(session, ledger, actor=actor, study_code=study,
                                 subject_id=subject_id, data=body)
    return {"id": rec.id, "consent_type": rec.consent_type, "scopes": rec.scopes,
            "given_at": rec.given_at.isoformat(), "obtained_by": rec.obtained_by,
            "replaces_id": rec.replaces_id}


@router.get("/studies/{study}/subjects/{subject_id}/consents",
            dependencies=[requires(Perm.CONSENT_READ)])
def consent_history(study: str, subject_id: str, session: SessionDep,
                    actor: CurrentActor) -> list[dict[str, Any]]:
    return consent.consent_history(session, actor=actor, study_code=study,
                                   subject_id=subject_id)


@router.post("/studies/{study}/consents/{consent_id}/withdrawals", status_code=201,
             dependencies=[requires(Perm.CONSENT_RECORD)])
def withdraw(study: str, consent_id: str, body: consent.WithdrawalIn, session: SessionDep,
             ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    ws = consent.withdraw_consent(session, ledger, actor=actor, study_code=study,
                                  consent_id=consent_id, data=body)
    return {"withdrawn": ["whole" if w.scope is None else w.scope for w in ws],
            "withdrawn_at": ws[0].withdrawn_at.isoformat()}


@router.get("/studies/{study}/subjects/{subject_id}/may-use",
            dependencies=[requires(Perm.CONSENT_READ)])
def may_use(study: str, subject_id: str, session: SessionDep, actor: CurrentActor,
            scope: str = Query(max_length=30),
            at: dt.datetime | None = None) -> dict[str, Any]:
    return overview.use_decision(session, actor=actor, study_code=study, subject_id=subject_id,
                                 scope=scope, at=at or _now())


# ---- eCRF metadata ------------------------------------------------------------------------------

@router.post("/studies/{study}/forms/redcap", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def import_redcap(study: str, body: RedcapImportIn, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, Any]:
    return forms.import_redcap(session, ledger, actor=actor, study_code=study,
                               text=body.csv).public()


@router.post("/studies/{study}/forms/odm", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def import_odm(study: str, body: OdmImportIn, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, Any]:
    return forms.import_odm(session, ledger, actor=actor, study_code=study,
                            data=body.xml.encode("utf-8")).public()


@router.get("/studies/{study}/odm", dependencies=[requires(Perm.STUDY_READ)],
            response_class=Response)
def export_odm(study: str, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> Response:
    data = forms.export_odm(session, ledger, actor=actor, study_code=study, now=_now())
    return Response(data, media_type="application/xml", headers={
        "content-disposition": f'attachment; filename="{study}-odm.xml"'})


@router.get("/studies/{study}/forms", dependencies=[requires(Perm.STUDY_READ)])
def list_forms(study: str, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return forms.list_forms(session, actor=actor, study_code=study)


@router.post("/studies/{study}/events", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def define_event(study: str, body: forms.EventIn, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> dict[str, Any]:
    e = forms.define_event(session, ledger, actor=actor, study_code=study, data=body)
    return {"name": e.name, "label_zh": e.label_zh, "label_en": e.label_en,
            "forms": e.form_names}


@router.get("/studies/{study}/forms/{form}/versions/{number}",
            dependencies=[requires(Perm.STUDY_READ)])
def show_version(study: str, form: str, number: int, session: SessionDep,
                 actor: CurrentActor) -> dict[str, Any]:
    return forms.show_version(session, actor=actor, study_code=study, form_name=form,
                              number=number)


@router.post("/studies/{study}/forms/{form}/versions", status_code=201,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def new_version(study: str, form: str, session: SessionDep, ledger: LedgerDep,
                actor: CurrentActor) -> dict[str, Any]:
    v = forms.new_version(session, ledger, actor=actor, study_code=study, form_name=form)
    return {"form": form, "version": v.number, "status": v.status}


@router.post("/studies/{study}/forms/{form}/versions/{number}/publish",
             dependencies=[requires(Perm.STUDY_MANAGE)])
def publish(study: str, form: str, number: int, session: SessionDep, ledger: LedgerDep,
            actor: CurrentActor) -> dict[str, Any]:
    v = forms.publish_version(session, ledger, actor=actor, study_code=study, form_name=form,
                              number=number)
    return {"form": form, "version": v.number, "status": v.status}


@router.patch("/studies/{study}/forms/{form}/versions/{number}/items/{item}",
              dependencies=[requires(Perm.STUDY_MANAGE)])
def update_item(study: str, form: str, number: int, item: str, body: forms.ItemUpdate,
                session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return forms.item_public(forms.update_item(session, ledger, actor=actor, study_code=study,
                                               form_name=form, number=number, item_name=item,
                                               data=body))


@router.post("/studies/{study}/forms/{form}/versions/{number}/check",
             dependencies=[requires(Perm.STUDY_READ)])
def check_values(study: str, form: str, number: int, body: CheckIn, session: SessionDep,
                 actor: CurrentActor) -> dict[str, Any]:
    result = forms.check_entry_for(session, actor=actor, study_code=study, form_name=form,
                                   number=number, values=dict(body.values),
                                   today=body.today or _now().date())
    return {"ok": result.ok, "values": result.values, "errors": result.errors,
            "hidden": result.hidden}
