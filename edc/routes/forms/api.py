"""JSON API of eCRF metadata (/api/v1): REDCap and ODM import, ODM export, events, form
versions, item classification and the value check."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from edc.deps import CurrentActor, LedgerDep, SessionDep
from edc.errors import raises
from edc.policy import ApiRouter, attachment, requires
from edc.routes.clock import now
from studies.forms import checks as form_checks
from studies.forms import service as forms
from studies.forms.schemas import (
    CheckOut,
    EventIn,
    EventOut,
    FormSummaryOut,
    FormVersionOut,
    ImportOut,
    ItemOut,
    ItemUpdate,
    VersionStatusOut,
)
from studies.kernel.errors import Locked
from studies.kernel.roles import Perm

router = ApiRouter(prefix="/api/v1", tags=["studies"])
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


@router.post("/studies/{study}/forms/redcap", status_code=201, response_model=ImportOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def import_redcap(study: str, body: RedcapImportIn, session: SessionDep, ledger: LedgerDep,
                  actor: CurrentActor) -> dict[str, Any]:
    return forms.import_redcap(session, ledger, actor=actor, study_code=study,
                               text=body.csv).public()


@router.post("/studies/{study}/forms/odm", status_code=201, response_model=ImportOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def import_odm(study: str, body: OdmImportIn, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> dict[str, Any]:
    return forms.import_odm(session, ledger, actor=actor, study_code=study,
                            data=body.xml.encode("utf-8")).public()


@router.get("/studies/{study}/odm", dependencies=[requires(Perm.STUDY_READ)],
            response_class=Response, responses=attachment("application/xml"))
def export_odm(study: str, session: SessionDep, ledger: LedgerDep,
               actor: CurrentActor) -> Response:
    data = forms.export_odm(session, ledger, actor=actor, study_code=study, now=now())
    return Response(data, media_type="application/xml", headers={
        "content-disposition": f'attachment; filename="{study}-odm.xml"'})


@router.get("/studies/{study}/redcap-dictionary.csv", dependencies=[requires(Perm.STUDY_READ)],
            response_class=Response, responses=attachment("text/csv; charset=utf-8"))
def export_redcap_dictionary(study: str, session: SessionDep, ledger: LedgerDep,
                             actor: CurrentActor) -> Response:
    """The study's forms as a REDCap data dictionary (UTF-8 CSV with a byte-order mark)."""
    data = forms.redcap_dictionary(session, ledger, actor=actor, study_code=study)
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="{study}-DataDictionary.csv"'})


@router.get("/studies/{study}/forms", response_model=list[FormSummaryOut],
            dependencies=[requires(Perm.STUDY_READ)])
def list_forms(study: str, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return forms.list_forms(session, actor=actor, study_code=study)


@router.post("/studies/{study}/events", status_code=201, response_model=EventOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def define_event(study: str, body: EventIn, session: SessionDep, ledger: LedgerDep,
                 actor: CurrentActor) -> dict[str, Any]:
    e = forms.define_event(session, ledger, actor=actor, study_code=study, data=body)
    return {"name": e.name, "label_zh": e.label_zh, "label_en": e.label_en,
            "forms": e.form_names}


@router.get("/studies/{study}/forms/{form}/versions/{number}", response_model=FormVersionOut,
            dependencies=[requires(Perm.STUDY_READ)])
def show_version(study: str, form: str, number: int, session: SessionDep,
                 actor: CurrentActor) -> dict[str, Any]:
    return forms.show_version(session, actor=actor, study_code=study, form_name=form,
                              number=number)


@router.post("/studies/{study}/forms/{form}/versions", status_code=201,
             response_model=VersionStatusOut,
             dependencies=[requires(Perm.STUDY_MANAGE)])
def new_version(study: str, form: str, session: SessionDep, ledger: LedgerDep,
                actor: CurrentActor) -> dict[str, Any]:
    v = forms.new_version(session, ledger, actor=actor, study_code=study, form_name=form)
    return {"form": form, "version": v.number, "status": v.status}


@router.post("/studies/{study}/forms/{form}/versions/{number}/publish",
             response_model=VersionStatusOut, dependencies=[requires(Perm.STUDY_MANAGE)],
             responses=raises(Locked))
def publish(study: str, form: str, number: int, session: SessionDep, ledger: LedgerDep,
            actor: CurrentActor) -> dict[str, Any]:
    v = forms.publish_version(session, ledger, actor=actor, study_code=study, form_name=form,
                              number=number)
    return {"form": form, "version": v.number, "status": v.status}


@router.patch("/studies/{study}/forms/{form}/versions/{number}/items/{item}",
              response_model=ItemOut, dependencies=[requires(Perm.STUDY_MANAGE)],
              responses=raises(Locked))
def update_item(study: str, form: str, number: int, item: str, body: ItemUpdate,
                session: SessionDep, ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    return forms.item_public(forms.update_item(session, ledger, actor=actor, study_code=study,
                                               form_name=form, number=number, item_name=item,
                                               data=body))


@router.post("/studies/{study}/forms/{form}/versions/{number}/check", response_model=CheckOut,
             dependencies=[requires(Perm.STUDY_READ)])
def check_values(study: str, form: str, number: int, body: CheckIn, session: SessionDep,
                 actor: CurrentActor) -> dict[str, Any]:
    result = form_checks.check_entry_for(session, actor=actor, study_code=study, form_name=form,
                                   number=number, values=dict(body.values),
                                   today=body.today or now().date())
    return {"ok": result.ok, "values": result.values, "errors": result.errors,
            "hidden": result.hidden}
