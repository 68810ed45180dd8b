"""JSON API for enrolment (investigators) and the code index (the custodian only), /api/v1.

Identity goes in once, at enrolment, and comes out only to the code-index custodian, who must
give a reason; every lookup is a ledger entry. A lookup that finds nothing answers 200 with
``"found": false`` (and is recorded as such) rather than 404, so that the record of the lookup
commits with the answer.
"""

from __future__ import annotations

from typing import Literal

from fastapi.responses import Response
from pydantic import BaseModel, Field

from edc.deps import CurrentActor, LedgerDep, SessionDep, StateDep, audited_read
from edc.errors import raises
from edc.policy import ApiRouter, attachment, requires
from edc.routes.clock import now
from edc.routes.subjects.keys import index_keys
from studies.consent.schemas import ConsentIn
from studies.kernel.errors import Locked
from studies.kernel.events import Action
from studies.kernel.roles import Perm
from studies.subjects import code_index
from studies.subjects import requests as subject_requests
from studies.subjects import service as subjects
from studies.subjects.models import SubjectRequest
from studies.subjects.schemas import (
    ByCodeOut,
    ByIdentityOut,
    DisclosureOut,
    IdentityOut,
    LookupOut,
    Match,
    SubjectOut,
)

router = ApiRouter(prefix="/api/v1", tags=["subjects and code index"])


class EnrolIn(BaseModel):
    site: str = Field(max_length=10, description="site code, e.g. S01")
    name: str = Field(max_length=100)
    resident_id: str = Field(max_length=40, description="居民身份证号 (GB 11643)")
    phone: str | None = Field(default=None, max_length=30, description="mainland mobile")
    medical_record_number: str | None = Field(default=None, max_length=50)
    date_of_birth: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")
    address: str | None = Field(default=None, max_length=300)
    consent: ConsentIn = Field(description=(
        "the subject's consent, taken at enrolment (§11.3.4.2): informed or broad consent "
        "naming the signed consent form version (form_id) and the scopes agreed, or "
        "consent_type \"waiver\" naming an approved waiver (waiver_id); given_at with its "
        "time zone"))


def _out(row: subjects.SubjectRow) -> SubjectOut:
    return SubjectOut(code=row.code, study=row.study, site=row.site, status=row.status,
                      enrolled_at=row.enrolled_at, enrolled_by=row.enrolled_by)


@router.post("/studies/{study}/subjects", status_code=201, response_model=SubjectOut,
             dependencies=[requires(Perm.SUBJECT_ENROL)], responses=raises(Locked))
def enrol(study: str, body: EnrolIn, session: SessionDep, ledger: LedgerDep, state: StateDep,
          actor: CurrentActor) -> SubjectOut:
    """Enrol a subject with their consent (or under an approved waiver), in one step; needs a
    current ethics approval. The answer is the subject code only (the identity is never
    echoed)."""
    s = subjects.enrol_new_subject(
        session, ledger, actor=actor, keys=index_keys(state), study_code=study,
        site_code=body.site, name=body.name, resident_id=body.resident_id, phone=body.phone,
        medical_record_number=body.medical_record_number, date_of_birth=body.date_of_birth,
        address=body.address, consent=body.consent)
    return SubjectOut(code=s.code, study=study, site=body.site.strip(), status=s.status,
                      enrolled_at=s.enrolled_at, enrolled_by=s.enrolled_by)


@router.get("/studies/{study}/subjects", response_model=list[SubjectOut],
            dependencies=[requires(Perm.SUBJECT_READ), audited_read(Action.READ_LIST)])
def subject_list(study: str, session: SessionDep, actor: CurrentActor) -> list[SubjectOut]:
    return [_out(r) for r in subjects.list_subjects(session, actor=actor, study_code=study)]


@router.get("/studies/{study}/subjects/{code}", response_model=SubjectOut,
            dependencies=[requires(Perm.SUBJECT_READ), audited_read(Action.READ_SUBJECT)])
def subject_detail(study: str, code: str, session: SessionDep,
                   actor: CurrentActor) -> SubjectOut:
    return _out(subjects.get_subject(session, actor=actor, study_code=study, code=code))


class ByCodeIn(BaseModel):
    code: str = Field(max_length=40)
    reason: str = Field(max_length=500)


@router.post("/code-index/lookup/identity", response_model=ByCodeOut,
             dependencies=[requires(Perm.CODE_INDEX_LOOKUP)])
def lookup_identity(body: ByCodeIn, session: SessionDep, ledger: LedgerDep, state: StateDep,
                    actor: CurrentActor) -> ByCodeOut:
    """Re-identify a subject by code (custodian only; reason required; audited)."""
    r = code_index.lookup_identity(session, ledger, actor=actor,
                                 keys=index_keys(state), code=body.code,
                                 reason=body.reason)
    ident = None
    if r.identity is not None:
        i = r.identity
        ident = IdentityOut(name=i.name, resident_id=i.resident_id, phone=i.phone,
                            medical_record_number=i.medical_record_number,
                            date_of_birth=i.date_of_birth, address=i.address)
    return ByCodeOut(found=r.found, code=r.code, study=r.study, identity=ident)


class ByIdentityIn(BaseModel):
    resident_id: str = Field(max_length=40)
    reason: str = Field(max_length=500)


@router.post("/code-index/lookup/code", response_model=ByIdentityOut,
             dependencies=[requires(Perm.CODE_INDEX_LOOKUP)])
def lookup_code(body: ByIdentityIn, session: SessionDep, ledger: LedgerDep, state: StateDep,
                actor: CurrentActor) -> ByIdentityOut:
    """The subject code(s) of a person by resident ID number, via the blind index (custodian
    only; reason required; audited)."""
    r = code_index.lookup_code(session, ledger, actor=actor, keys=index_keys(state),
                             resident_id=body.resident_id, reason=body.reason)
    return ByIdentityOut(found=r.found, matches=[Match(study=s, code=c) for s, c in r.matches])


@router.get("/code-index/lookups", response_model=list[LookupOut],
            dependencies=[requires(Perm.CODE_INDEX_HISTORY)])
def lookup_history(session: SessionDep, actor: CurrentActor) -> list[LookupOut]:
    return [LookupOut(seq=r.seq, time=r.ts, actor=r.actor, action=r.action, code=r.code,
                      study=r.study, reason=r.reason, result=r.result)
            for r in code_index.lookup_history(session, actor=actor)]


@router.get("/code-index/subjects/{code}/disclosures", response_model=list[DisclosureOut],
            dependencies=[requires(Perm.CODE_INDEX_EXPORT)])
def disclosures(code: str, session: SessionDep, ledger: LedgerDep,
                actor: CurrentActor) -> list[DisclosureOut]:
    """To whom the subject's data were disclosed (§7 g): each extract package that held
    them (custodian only; audited)."""
    return [DisclosureOut(request_id=d.request_id, study=d.study_code,
                          recipient_org=d.recipient_org, tier=d.tier, fields=list(d.fields),
                          disclosed_at=d.disclosed_at)
            for d in code_index.disclosures(session, ledger, actor=actor, code=code)]


class ExportIn(BaseModel):
    code: str = Field(max_length=40)
    reason: str = Field(max_length=500)
    format: Literal["json", "text", "html"] = "json"


@router.post("/code-index/export", dependencies=[requires(Perm.CODE_INDEX_EXPORT)],
             response_class=Response,
             responses=attachment("application/json", "text/plain; charset=utf-8",
                                  "text/html; charset=utf-8"))
def export_subject(body: ExportIn, session: SessionDep, ledger: LedgerDep, state: StateDep,
                   actor: CurrentActor) -> Response:
    """Subject access (§7 d–e): the subject's own data as a file (custodian only; audited)."""
    f = code_index.export_subject(session, ledger, actor=actor,
                                keys=index_keys(state), code=body.code,
                                reason=body.reason, fmt=body.format)
    return Response(f.content, media_type=f.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{f.filename}"'})


class SubjectRequestIn(BaseModel):
    code: str = Field(max_length=40)
    kind: Literal["correction", "restriction"]
    text: str = Field(max_length=4000, description="the request, in the subject's words")
    reason: str = Field(max_length=500)


class SubjectRequestOut(BaseModel):
    id: str
    reference: str
    kind: str
    subject_code: str
    text: str
    status: str
    resolution: str | None
    resolved_by: str | None
    scopes: list[str] | None


class ResolveIn(BaseModel):
    note: str = Field(max_length=4000)
    scopes: list[Literal["study", "identifiable", "deidentified_future", "cross_border",
                         "contact"]] = Field(default_factory=list, max_length=5)


def _request_out(r: SubjectRequest, code: str) -> SubjectRequestOut:
    return SubjectRequestOut(id=r.id, reference=r.reference, kind=r.kind, subject_code=code,
                             text=r.text, status=r.status, resolution=r.resolution,
                             resolved_by=r.resolved_by, scopes=r.scopes)


@router.post("/code-index/requests", dependencies=[requires(Perm.CODE_INDEX_EXPORT)],
             status_code=201)
def record_subject_request(body: SubjectRequestIn, session: SessionDep, ledger: LedgerDep,
                           actor: CurrentActor) -> SubjectRequestOut:
    """Record a subject's correction (§7 f) or restriction (§7 h) request (custodian;
    audited); it is routed to the study team at the subject's site."""
    r = subject_requests.record(session, ledger, actor=actor, code=body.code, kind=body.kind,
                                text=body.text, reason=body.reason)
    return _request_out(r, body.code.strip().upper())


@router.get("/studies/{study}/subject-requests", dependencies=[requires(Perm.ENTRY_WRITE)])
def list_subject_requests(study: str, session: SessionDep,
                          actor: CurrentActor) -> list[SubjectRequestOut]:
    """The study's subject requests at the caller's sites, open and closed."""
    return [_request_out(v.request, v.subject_code) for v in subject_requests.for_study(
        session, actor=actor, study_code=study, status=None)]


@router.post("/studies/{study}/subject-requests/{request_id}/resolve",
             dependencies=[requires(Perm.ENTRY_WRITE)])
def resolve_subject_request(study: str, request_id: str, body: ResolveIn,
                            session: SessionDep, ledger: LedgerDep,
                            actor: CurrentActor) -> SubjectRequestOut:
    """Close a correction once the data were changed with a reason naming the request (409
    before), or agree to a restriction by withdrawing ``scopes``; audited."""
    req = subject_requests.get(session, study_code=study, request_id=request_id)
    if req.kind == "restriction":
        r = subject_requests.resolve_restriction(
            session, ledger, actor=actor, study_code=study, request_id=request_id,
            scopes=list(body.scopes), note=body.note, now=now())
    else:
        r = subject_requests.resolve_correction(session, ledger, actor=actor, study_code=study,
                                                request_id=request_id, note=body.note,
                                                now=now())
    return _request_out(r, subject_requests.subject_code(session, r))


@router.post("/studies/{study}/subject-requests/{request_id}/decline",
             dependencies=[requires(Perm.STUDY_MANAGE)])
def decline_subject_request(study: str, request_id: str, body: ResolveIn,
                            session: SessionDep, ledger: LedgerDep,
                            actor: CurrentActor) -> SubjectRequestOut:
    """Decline a subject's request with a note (the PI); audited."""
    r = subject_requests.decline(session, ledger, actor=actor, study_code=study,
                                 request_id=request_id, note=body.note, now=now())
    return _request_out(r, subject_requests.subject_code(session, r))
