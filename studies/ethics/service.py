"""Ethics committees, approvals of protocol versions, and consent waivers.

§11.3.2 e: a committee has at least 7 members, of more than one gender, including members
from outside the institution; the system refuses to record a decision of a committee that does
not meet this. §11.3.4.2: an approval names one protocol version; a waiver has one of the four
grounds of §11.3.4.2 a/b, must fit the study's design, and takes effect only once approved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.ethics.models import (
    AFFILIATIONS,
    APPROVING,
    DECISIONS,
    GENDERS,
    WAIVER_GROUNDS,
    CommitteeMember,
    ConsentWaiver,
    EthicsApproval,
    EthicsCommittee,
)
from studies.ethics.schemas import ApprovalIn, CommitteeIn, MemberIn, WaiverDecisionIn, WaiverIn
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l
from studies.kernel.roles import Perm
from studies.registry import service as registry
from studies.registry.models import ProtocolVersion, Study

CLAUSE_COMMITTEE = "§11.3.2 e"
CLAUSE_APPROVAL = "§11.3.4.2"
MIN_MEMBERS = 7
WAIVER_CLAUSES = {
    "post_market_deidentified": "§11.3.4.2 a 1)",
    "public_interest_statistics": "§11.3.4.2 a 2)",
    "retrospective_unreachable": "§11.3.4.2 b 1)",
    "retrospective_prior_consent": "§11.3.4.2 b 2)",
}
WAIVER_LABELS = {
    "post_market_deidentified":
        _l("Post-market study on de-identified data"),
    "public_interest_statistics":
        _l("Public-interest statistics, de-identified results"),
    "retrospective_unreachable":
        _l("Retrospective study, subjects cannot be reached"),
    "retrospective_prior_consent":
        _l("Retrospective study covered by a signed consent"),
}
DECISION_LABELS = {
    "approved": _l("Approved"),
    "approved_with_conditions": _l("Approved with conditions"),
    "rejected": _l("Rejected"),
}


def get_committee(session: Session, committee_id: str) -> EthicsCommittee:
    c = session.get(EthicsCommittee, committee_id)
    if c is None:
        raise NotFound(_("no such ethics committee"), field="committee_id")
    return c


def list_committees(session: Session) -> list[EthicsCommittee]:
    return list(session.execute(select(EthicsCommittee).order_by(col(EthicsCommittee.name)))
                .scalars())


def members_of(session: Session, committee_id: str) -> list[CommitteeMember]:
    return list(session.execute(select(CommitteeMember).where(
        col(CommitteeMember.committee_id) == committee_id).order_by(
        col(CommitteeMember.created_at)))
        .scalars())


def create_committee(session: Session, ledger: Ledger, *, actor: Actor,
                     data: CommitteeIn) -> EthicsCommittee:
    require(actor, Perm.ETHICS_RECORD)
    if session.execute(select(col(EthicsCommittee.id)).where(
            col(EthicsCommittee.name) == data.name.strip())).first():
        raise Conflict(_("a committee with this name exists"), field="name")
    c = EthicsCommittee(name=data.name.strip(), institution=data.institution.strip())
    session.add(c)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ETHICS_COMMITTEE_CREATE, entity_type="ethics_committee",
                  entity_id=c.id, changes=[Change("name", None, c.name),
                                           Change("institution", None, c.institution)])
    return c


def add_member(session: Session, ledger: Ledger, *, actor: Actor, committee_id: str,
               data: MemberIn) -> CommitteeMember:
    require(actor, Perm.ETHICS_RECORD)
    get_committee(session, committee_id)
    if data.gender not in GENDERS:
        raise InvalidInput(_("gender must be one of {GENDERS}").format(GENDERS=', '.join(GENDERS)),
                           field="gender")
    if data.affiliation not in AFFILIATIONS:
        raise InvalidInput(_("affiliation must be internal or external"),
                           field="affiliation")
    m = CommitteeMember(committee_id=committee_id, **data.model_dump())
    session.add(m)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ETHICS_MEMBER_ADD, entity_type="committee_member", entity_id=m.id,
                  changes=[Change(k, None, v) for k, v in data.model_dump().items()])
    return m


def remove_member(session: Session, ledger: Ledger, *, actor: Actor, member_id: str) -> None:
    require(actor, Perm.ETHICS_RECORD)
    m = session.get(CommitteeMember, member_id)
    if m is None or not m.active:
        raise NotFound(_("no such active member"), field="member_id")
    m.active = False
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ETHICS_MEMBER_REMOVE, entity_type="committee_member",
                  entity_id=m.id, changes=[Change("active", True, False)])


def composition_problems(session: Session, committee_id: str) -> list[str]:
    """What keeps this committee from meeting §11.3.2 e (empty when it does)."""
    active = [m for m in members_of(session, committee_id) if m.active]
    problems = []
    if len(active) < MIN_MEMBERS:
        problems.append(_("the committee has {n_active} members, at least {MIN_MEMBERS} are "
                          "required").format(n_active=len(active), MIN_MEMBERS=MIN_MEMBERS))
    if len({m.gender for m in active}) < 2:
        problems.append(_("all members are of one gender"))
    if not any(m.affiliation == "external" for m in active):
        problems.append(_("no member is from outside the institution"))
    return problems


def _require_valid_committee(session: Session, committee_id: str) -> EthicsCommittee:
    c = get_committee(session, committee_id)
    problems = composition_problems(session, committee_id)
    if problems:
        raise RuleViolation(
            _("committee {name!r} does not meet §11.3.2 e: {problems}").format(
                name=c.name, problems="; ".join(problems)),
            field="committee_id", clause=CLAUSE_COMMITTEE)
    return c


def record_approval(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                    data: ApprovalIn) -> EthicsApproval:
    """Record the committee's decision on one protocol version of a study.

    Refused when the committee does not meet §11.3.2 e. An approval of the study's newest
    protocol version makes a draft study active.
    """
    require(actor, Perm.ETHICS_RECORD, study=study_code)
    study = registry.get_study(session, study_code)
    if data.decision not in DECISIONS:
        raise InvalidInput(_("decision must be one of {DECISIONS}").format(
                               DECISIONS=', '.join(DECISIONS)),
                           field="decision")
    pv = session.execute(select(ProtocolVersion).where(
        col(ProtocolVersion.study_id) == study.id,
        col(ProtocolVersion.number) == data.protocol_version)).scalar_one_or_none()
    if pv is None:
        raise NotFound(_("study {code} has no protocol version {protocol_version}").format(
                           code=study.code, protocol_version=data.protocol_version),
                       field="protocol_version")
    if data.decision == "approved_with_conditions" and not (data.conditions or "").strip():
        raise InvalidInput(_("approval with conditions needs the conditions"),
                           field="conditions")
    if data.expires_on is not None and data.expires_on <= data.decided_on:
        raise InvalidInput(_("expiry must be after the decision date"),
                           field="expires_on")
    if data.decided_on < pv.version_date:
        raise InvalidInput(_("the decision predates the protocol version"),
                           field="decided_on")
    if data.identifiable_use and data.decision not in APPROVING:
        raise InvalidInput(_("identifiable_use: only an approving decision can cover identifiable "
                             "use"), field="identifiable_use",
                           clause="§11.3.4.2")
    committee = _require_valid_committee(session, data.committee_id)
    a = EthicsApproval(study_id=study.id, protocol_version_id=pv.id, committee_id=committee.id,
                       reference=data.reference.strip(), decision=data.decision,
                       decided_on=data.decided_on, expires_on=data.expires_on,
                       conditions=(data.conditions or "").strip() or None,
                       identifiable_use=data.identifiable_use,
                       recorded_by=actor.username)
    session.add(a)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client, action=Action.ETHICS_APPROVAL,
                  entity_type="ethics_approval", entity_id=a.id, study=study.code,
                  version=pv.number,
                  changes=[Change("protocol_version", None, pv.label),
                           Change("committee", None, committee.name),
                           Change("decision", None, a.decision),
                           Change("decided_on", None, a.decided_on.isoformat()),
                           Change("expires_on", None,
                                  a.expires_on.isoformat() if a.expires_on else None),
                           Change("conditions", None, a.conditions),
                           Change("identifiable_use", None, a.identifiable_use),
                           Change("reference", None, a.reference)])
    newest = registry.protocol_versions(session, study.id)[-1]
    if a.decision in APPROVING and newest.id == pv.id and study.status == "draft":
        registry.set_status(session, ledger, actor=actor, study=study, status="active",
                            reason=f"protocol {pv.label} approved ({a.reference})")
    return a


def approvals_of(session: Session, study_id: str) -> list[EthicsApproval]:
    return list(session.execute(select(EthicsApproval).where(
        col(EthicsApproval.study_id) == study_id).order_by(
        col(EthicsApproval.recorded_at))).scalars())


def approval_public(session: Session, a: EthicsApproval) -> dict[str, Any]:
    pv = session.get(ProtocolVersion, a.protocol_version_id)
    c = session.get(EthicsCommittee, a.committee_id)
    return {"id": a.id, "protocol_version": pv.number if pv else None,
            "protocol_label": pv.label if pv else None,
            "committee": c.name if c else None, "reference": a.reference,
            "decision": a.decision, "decided_on": a.decided_on.isoformat(),
            "expires_on": a.expires_on.isoformat() if a.expires_on else None,
            "conditions": a.conditions, "identifiable_use": a.identifiable_use,
            "recorded_by": a.recorded_by}


def waiver_fit_problem(study: Study, data: WaiverIn) -> str | None:
    """Why a ground does not fit the study's design flags (None when it fits)."""
    g = data.ground
    if g == "post_market_deidentified" and not study.post_market:
        return (_("this ground is for post-market studies; the study is not flagged post-market"))
    if g == "public_interest_statistics" and not study.public_interest:
        return (_("this ground is for public-interest statistics or academic research; the study "
                  "is not flagged as such"))
    if g in ("retrospective_unreachable", "retrospective_prior_consent") and \
            study.design != "retrospective":
        return (_("this ground is for retrospective studies; the study is prospective"))
    if g == "retrospective_prior_consent" and not (data.prior_consent_reference or "").strip():
        return (_("name the signed consent whose scope covers this study"))
    return None


def request_waiver(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   data: WaiverIn) -> ConsentWaiver:
    """Record a waiver request; refused if the ground does not fit the study's design flags
    or the data would not be de-identified (every ground of §11.3.4.2 a/b requires it)."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    if data.ground not in WAIVER_GROUNDS:
        raise InvalidInput(_("ground must be one of {WAIVER_GROUNDS}").format(
                               WAIVER_GROUNDS=', '.join(WAIVER_GROUNDS)),
                           field="ground")
    clause = WAIVER_CLAUSES[data.ground]
    if not data.data_deidentified:
        raise RuleViolation(_("a consent waiver requires the data to be de-identified"),
                            field="data_deidentified",
                            clause=clause)
    problem = waiver_fit_problem(study, data)
    if problem:
        raise RuleViolation(problem, field="ground", clause=clause)
    w = ConsentWaiver(study_id=study.id, ground=data.ground,
                      justification=data.justification.strip(),
                      prior_consent_reference=(data.prior_consent_reference or "").strip()
                      or None, requested_by=actor.username)
    session.add(w)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.CONSENT_WAIVER_REQUEST, entity_type="consent_waiver",
                  entity_id=w.id, study=study.code,
                  changes=[Change("ground", None, w.ground),
                           Change("justification", None, w.justification),
                           Change("prior_consent_reference", None, w.prior_consent_reference)])
    return w


def decide_waiver(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                  waiver_id: str, data: WaiverDecisionIn) -> ConsentWaiver:
    """The committee's decision on a waiver request (refused for a committee that does not
    meet §11.3.2 e, and for a waiver already decided)."""
    require(actor, Perm.ETHICS_RECORD, study=study_code)
    study = registry.get_study(session, study_code)
    w = session.get(ConsentWaiver, waiver_id)
    if w is None or w.study_id != study.id:
        raise NotFound(_("no such waiver request in this study"), field="waiver_id")
    if w.status != "requested":
        raise Conflict(_("the waiver was already {status}").format(status=w.status),
                       field="waiver_id")
    if data.decision not in ("approved", "rejected"):
        raise InvalidInput(_("decision must be approved or rejected"),
                           field="decision")
    committee = _require_valid_committee(session, data.committee_id)
    w.status, w.committee_id = data.decision, committee.id
    w.decision_reference, w.decided_on = data.reference.strip(), data.decided_on
    w.decided_at, w.decided_by = dt.datetime.now(dt.UTC), actor.username
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.CONSENT_WAIVER_DECIDE, entity_type="consent_waiver", entity_id=w.id,
                  study=study.code,
                  changes=[Change("status", "requested", w.status),
                           Change("committee", None, committee.name),
                           Change("reference", None, w.decision_reference),
                           Change("decided_on", None, data.decided_on.isoformat())])
    return w


def waivers_of(session: Session, study_id: str) -> list[ConsentWaiver]:
    return list(session.execute(select(ConsentWaiver).where(
        col(ConsentWaiver.study_id) == study_id).order_by(
        col(ConsentWaiver.requested_at))).scalars())


def waiver_public(w: ConsentWaiver) -> dict[str, Any]:
    return {"id": w.id, "ground": w.ground, "clause": WAIVER_CLAUSES[w.ground],
            "justification": w.justification,
            "prior_consent_reference": w.prior_consent_reference, "status": w.status,
            "requested_by": w.requested_by, "decision_reference": w.decision_reference,
            "decided_on": w.decided_on.isoformat() if w.decided_on else None}


def committee_public(session: Session, c: EthicsCommittee) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "institution": c.institution,
            "members": [{"id": m.id, "name": m.name, "gender": m.gender,
                         "affiliation": m.affiliation, "expertise": m.expertise,
                         "active": m.active} for m in members_of(session, c.id)],
            "meets_11_3_2_e": not composition_problems(session, c.id),
            "problems": composition_problems(session, c.id)}
