"""JSON API for extract requests, approvals, builds, downloads and destruction certificates
(/api/v1). Thin: each route calls one domain function of :mod:`studies.extracts`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Form, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from edc.deps import AuthDep, CurrentActor, LedgerDep, SessionDep, StateDep
from edc.errors import raises
from edc.policy import ApiRouter, attachment, authenticated, requires
from studies.extracts import custody as extract_custody
from studies.extracts import recipients as extract_recipients
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.schemas import (
    AgreementOut,
    AuthorityApprovalOut,
    BuildQueuedOut,
    DecisionIn,
    DecisionOut,
    DestructionOut,
    ExtractDetailOut,
    ExtractFieldOut,
    ExtractOut,
    OverrideIn,
    OverrideOut,
    RequestIn,
)
from studies.kernel.errors import Conflict, RuleViolation
from studies.kernel.roles import Perm

router = ApiRouter(prefix="/api/v1", tags=["extracts"])


class RequestBody(BaseModel):
    purpose: str = Field(max_length=4000)
    fields: list[str] = Field(max_length=500)
    tier: str = Field(max_length=3, description="puf, lds or rif")
    recipient_org: str = Field(max_length=200, description=(
        "the code (or id) of a registered organisation, see GET /api/v1/organisations"))
    recipient_key: str = Field(max_length=100, description="age X25519 public key (age1…)")
    recipients: list[str] = Field(default_factory=list, max_length=20)
    use_from: dt.date
    use_until: dt.date
    cross_border: bool | None = Field(default=None, description=(
        "derived from the organisation's registered country; omit it (a contradicting value "
        "is refused with 422)"))
    as_of: dt.datetime | None = None
    k: int = Field(default=5, ge=2, le=100)


@router.get("/studies/{study}/extract-fields", response_model=list[ExtractFieldOut],
            dependencies=[requires(Perm.EXTRACT_REQUEST)])
def extract_fields(study: str, session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Fields a request may name, with their classification (identifier, quasi, sensitive)."""
    cat = ex.fields_for(session, actor=actor, study_code=study)
    return [{"name": f.name, "label": f.label, "classification": f.classification,
             "data_type": f.data_type, "level": f.level} for f in cat]


@router.post("/studies/{study}/extracts", status_code=201, response_model=ExtractOut,
             dependencies=[requires(Perm.EXTRACT_REQUEST)])
def create(study: str, body: RequestBody, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor) -> dict[str, Any]:
    req = ex.create_request(session, ledger, actor=actor, study_code=study,
                            data=RequestIn(**body.model_dump()))
    return ex.public(session, req)


@router.get("/extracts", response_model=list[ExtractOut], dependencies=[authenticated()])
def list_all(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    return [ex.public(session, r) for r in ex.list_requests(session, actor=actor)]


@router.get("/extracts/{request_id}", response_model=ExtractDetailOut,
            response_model_exclude_unset=True, dependencies=[authenticated()])
def detail(request_id: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The request, its approvals, build progress and pre-transfer checks."""
    return extract_review.detail(session, actor=actor, request_id=request_id)


@router.get("/extracts/{request_id}/agreement", response_model=AgreementOut,
            dependencies=[authenticated()])
def agreement(request_id: str, session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
    """The data-use agreement in full (Appendix E.3, zh/en) with its SHA-256, and the hashes an
    approval act of this request signs (``content_sha256``, over the request's and the terms')."""
    return extract_review.agreement_view(session, actor=actor, request_id=request_id)


class DecisionBody(BaseModel):
    kind: str = Field(max_length=10, description="officer (the first review), vote, ethics "
                      "or dua")
    approve: bool = True
    password: str = Field(max_length=200)
    username: str = Field(default="", max_length=100)
    totp: str | None = Field(default=None, max_length=12)
    note: str | None = Field(default=None, max_length=2000)
    reference: str | None = Field(default=None, max_length=100, description=(
        "ethics: the id of the ethics approval of the current protocol version that covers "
        "identifiable use"))
    terms_sha256: str | None = Field(default=None, max_length=64, description=(
        "optional: the terms_sha256 you read (GET …/agreement); 409 if the terms changed"))


@router.post("/extracts/{request_id}/decisions", status_code=201, response_model=DecisionOut,
             dependencies=[authenticated()], responses=raises(Conflict, RuleViolation))
def decide(request_id: str, body: DecisionBody, session: SessionDep, ledger: LedgerDep,
           actor: CurrentActor, auth: AuthDep) -> dict[str, Any]:
    """One signed approval act. A wrong username, password or second-factor code is 422
    (``signature_refused``, naming the field); the session stays valid."""
    d = extract_review.decide(session, ledger, actor=actor, request_id=request_id,
                              data=DecisionIn(**body.model_dump()), config=auth)
    _, _, content = extract_review.signed_content(ex.get_request(session, request_id))
    return {"id": d.id, "kind": d.kind, "approve": d.approve, "signature": d.signature_id,
            "request_sha256": d.request_sha256, "terms_sha256": d.terms_sha256,
            "content_sha256": content}


@router.post("/extracts/{request_id}/build", status_code=202, response_model=BuildQueuedOut,
             dependencies=[requires(Perm.EXTRACT_BUILD)])
def build(request_id: str, request: Request, session: SessionDep, ledger: LedgerDep,
          actor: CurrentActor) -> dict[str, Any]:
    """Queue the build; the background worker builds it. Poll the request for progress."""
    req = extract_custody.queue_build(session, ledger, actor=actor, request_id=request_id)
    worker = getattr(request.app.state, "job_runner", None)
    if worker is not None:
        worker.wake()
    return {"id": req.id, "build": req.build_state, "progress": req.progress}


class OverrideBody(BaseModel):
    reason: str = Field(max_length=2000)


@router.post("/extracts/{request_id}/override", response_model=OverrideOut,
             dependencies=[requires(Perm.EXTRACT_BUILD)])
def override(request_id: str, body: OverrideBody, session: SessionDep, ledger: LedgerDep,
             actor: CurrentActor) -> dict[str, Any]:
    req = extract_custody.override_checks(session, ledger, actor=actor, request_id=request_id,
                             data=OverrideIn(reason=body.reason))
    return {"id": req.id, "build": req.build_state}


@router.get("/extracts/{request_id}/package", dependencies=[requires(Perm.EXTRACT_DOWNLOAD)],
            response_class=FileResponse, responses=attachment("application/octet-stream"))
def download(request_id: str, session: SessionDep, ledger: LedgerDep, state: StateDep,
             actor: CurrentActor) -> Response:
    """The encrypted package (age); only the request's named recipient accounts or tokens."""
    req = extract_custody.authorise_download(session, ledger, actor=actor, request_id=request_id)
    path = state.settings.extract_dir / str(req.package_file)
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"extract-{req.id}.tar.age")


@router.post("/extracts/{request_id}/destruction", response_model=DestructionOut,
             dependencies=[authenticated()])
async def destruction(request_id: str, certificate: UploadFile, session: SessionDep,
                      ledger: LedgerDep, actor: CurrentActor) -> dict[str, Any]:
    data = await certificate.read(10_000_001)
    req = extract_custody.record_destruction(session, ledger, actor=actor, request_id=request_id,
                                certificate=data, filename=certificate.filename or "")
    return {"id": req.id, "destruction_sha256": req.destruction_sha256}


@router.get("/extracts-overdue", response_model=list[ExtractOut],
            dependencies=[requires(Perm.EXTRACT_APPROVE)])
def overdue(session: SessionDep, actor: CurrentActor) -> list[dict[str, Any]]:
    """Overdue destruction certificates (the data security officer's flag list)."""
    rows = extract_custody.overdue_for_officer(session, actor=actor)
    return [ex.public(session, r) for r in rows]


def _approval_out(a: Any) -> dict[str, Any]:
    return {"id": a.id, "organisation": a.organisation_id, "reference": a.reference,
            "approved_on": a.approved_on.isoformat(), "document_sha256": a.document_sha256,
            "document_name": a.document_name, "recorded_by": a.recorded_by,
            "recorded_at": a.recorded_at.isoformat()}


@router.get("/organisations/{organisation}/cross-border-approvals",
            response_model=list[AuthorityApprovalOut],
            dependencies=[requires(Perm.EXTRACT_APPROVE)])
def authority_approvals(organisation: str, session: SessionDep,
                        actor: CurrentActor) -> list[dict[str, Any]]:
    """Approvals of the relevant authority recorded for an organisation (§7 p)."""
    _org, rows = extract_recipients.approvals_of(session, actor=actor, organisation=organisation)
    return [_approval_out(a) for a in rows]


@router.post("/organisations/{organisation}/cross-border-approvals", status_code=201,
             response_model=AuthorityApprovalOut, dependencies=[requires(Perm.EXTRACT_APPROVE)])
async def record_authority_approval(
        organisation: str, document: UploadFile, session: SessionDep, ledger: LedgerDep,
        actor: CurrentActor, reference: str = Form(max_length=100),
        approved_on: dt.date = Form()) -> dict[str, Any]:
    """The data security officer records an approval of the relevant authority that lifts
    the 250-person cross-border limit for this organisation (§7 p): the authority's
    reference, the approval's date and the document (only its SHA-256 is kept)."""
    data = await document.read(extract_recipients.MAX_DOCUMENT + 1)
    a = extract_recipients.record_authority_approval(
        session, ledger, actor=actor, organisation=organisation, reference=reference,
        approved_on=approved_on, document=data, filename=document.filename or "")
    return _approval_out(a)
