"""Consent capture, re-consent and withdrawal (§11.3.4.2, §7 a, §11.3.4.4 b), and the checks
other packages call before they enrol, enter or extract:

- :func:`assert_enrolment_allowed` — a current ethics approval of the current protocol version;
- :func:`assert_entry_allowed` — that, plus a valid consent (or an approved waiver) covering
  use in the study, not withdrawn, on the form version the committee currently requires;
- :func:`may_use` / :func:`assert_may_use` — may this subject's data be used for scope X as of
  time T? (extracts filter on it).

Withdrawal keeps the data already entered (trial records must be kept) and is itself audited;
from its time on, the withdrawn scopes are refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.consent.models import (
    CONSENT_TYPES,
    SCOPES,
    ConsentForm,
    ConsentRecord,
    ConsentWithdrawal,
)
from studies.consent.schemas import ConsentFormIn, ConsentIn, WithdrawalIn
from studies.ethics import service as ethics
from studies.ethics.models import APPROVING, ConsentWaiver, EthicsApproval
from studies.guards import CLAUSE_CONSENT, assert_writable, enrolment_problem, zoned
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry import service as registry
from studies.registry.models import Study
from studies.subjects.models import Subject

CLAUSE_USE = "§7 a"
REQUIRED_SCOPE = {"informed": "study", "broad": "deidentified_future"}
CLOCK_SKEW = dt.timedelta(minutes=5)


# ---- consent form versions ----------------------------------------------------------------------

def add_consent_form(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                     data: ConsentFormIn) -> ConsentForm:
    """A new consent form version; its text must carry an approving ethics decision of this
    study (§11.3.4.2). ``requires_reconsent`` makes subjects on older versions re-consent
    before further entry."""
    require(actor, Perm.STUDY_MANAGE, study=study_code)
    study = registry.get_study(session, study_code)
    if data.consent_type not in ("informed", "broad"):
        raise InvalidInput(_("a consent form is for informed or broad consent"),
                           field="consent_type")
    approval = session.get(EthicsApproval, data.approval_id)
    if approval is None or approval.study_id != study.id:
        raise NotFound(_("no such ethics approval of this study"),
                       field="approval_id")
    if approval.decision not in APPROVING:
        raise RuleViolation(_("the consent form must be approved by the ethics committee; this "
                              "decision was a rejection"),
                            field="approval_id", clause=CLAUSE_CONSENT)
    if session.execute(select(col(ConsentForm.id)).where(
            col(ConsentForm.study_id) == study.id,
            col(ConsentForm.version) == data.version)).first():
        raise Conflict(_("consent form version {version!r} exists").format(version=data.version),
                       field="version")
    last = session.execute(select(func.max(col(ConsentForm.number))).where(
        col(ConsentForm.study_id) == study.id)).scalar() or 0
    form = ConsentForm(study_id=study.id, number=last + 1, created_by=actor.username,
                       **data.model_dump())
    session.add(form)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.CONSENT_FORM_CREATE, entity_type="consent_form", entity_id=form.id,
                  study=study.code, version=form.number,
                  changes=[Change(k, None, v) for k, v in data.model_dump().items()])
    return form


def consent_forms(session: Session, study_id: str) -> list[ConsentForm]:
    return list(session.execute(select(ConsentForm).where(col(ConsentForm.study_id) == study_id)
                                .order_by(col(ConsentForm.number))).scalars())


def get_consent_form(session: Session, form_id: str) -> ConsentForm:
    f = session.get(ConsentForm, form_id)
    if f is None:
        raise NotFound(_("no such consent form"), field="form_id")
    return f


def consent_form_public(f: ConsentForm) -> dict[str, Any]:
    return {"id": f.id, "version": f.version, "number": f.number,
            "consent_type": f.consent_type, "text_zh": f.text_zh, "text_en": f.text_en,
            "approval_id": f.approval_id, "requires_reconsent": f.requires_reconsent,
            "created_at": f.created_at.isoformat()}


# ---- consent records ----------------------------------------------------------------------------

def _subject_in(session: Session, study: Study, subject_id: str, *, actor: Actor,
                perm: Perm) -> Subject:
    """The subject of this study, if ``actor`` holds ``perm`` at the subject's site."""
    subject = session.get(Subject, subject_id)
    if subject is None or subject.study_id != study.id:
        raise NotFound(_("no such subject in this study"),
                       field="subject_id")
    guards.require_for_subject(session, actor, perm, study=study, subject=subject)
    return subject


def records_of(session: Session, subject_id: str) -> list[ConsentRecord]:
    return list(session.execute(select(ConsentRecord).where(
        col(ConsentRecord.subject_id) == subject_id).order_by(
        col(ConsentRecord.given_at), col(ConsentRecord.recorded_at))).scalars())


def _withdrawals(session: Session, consent_id: str) -> list[ConsentWithdrawal]:
    return list(session.execute(select(ConsentWithdrawal).where(
        col(ConsentWithdrawal.consent_id) == consent_id).order_by(
        col(ConsentWithdrawal.withdrawn_at)))
        .scalars())


class CheckedConsent(NamedTuple):
    """A consent that passed :func:`check_consent`: what :func:`record_consent` writes."""
    form: ConsentForm | None
    waiver: ConsentWaiver | None
    scopes: list[str]
    given_at: dt.datetime


def check_consent(session: Session, *, study_id: str, data: ConsentIn) -> CheckedConsent:
    """Check a consent (or waiver coverage) for a subject of ``study_id`` without writing:
    the time, the type, the scopes, the form version (of this study, of this type, with the
    required scope) or the waiver (of this study, approved), and that the study is open
    (§11.3.4.2). Raises what :func:`record_consent` would; enrolment calls it before it
    writes anything."""
    study = registry.get_study_by_id(session, study_id)
    given_at = zoned(data.given_at, "given_at")
    if given_at > dt.datetime.now(dt.UTC) + CLOCK_SKEW:
        raise InvalidInput(_("consent cannot be given in the future"),
                           field="given_at")
    if data.consent_type not in CONSENT_TYPES:
        raise InvalidInput(_("type must be one of {CONSENT_TYPES}").format(
                               CONSENT_TYPES=', '.join(CONSENT_TYPES)),
                           field="consent_type")
    unknown = [s for s in data.scopes if s not in SCOPES]
    if unknown:
        raise InvalidInput(_("unknown scope {value!r} (known: {SCOPES})").format(
                               value=unknown[0], SCOPES=', '.join(SCOPES)), field="scopes")
    scopes = sorted(set(data.scopes))
    form: ConsentForm | None = None
    waiver: ConsentWaiver | None = None
    if data.consent_type == "waiver":
        if not data.waiver_id or data.form_id:
            raise InvalidInput(_("a waiver record names the approved waiver, not a form"),
                               field="waiver_id")
        waiver = session.get(ConsentWaiver, data.waiver_id)
        if waiver is None or waiver.study_id != study.id:
            raise NotFound(_("no such waiver in this study"), field="waiver_id")
        if waiver.status != "approved":
            raise RuleViolation(_("a consent waiver needs the ethics committee's approval"),
                                field="waiver_id",
                                clause=ethics.WAIVER_CLAUSES[waiver.ground])
        if scopes not in ([], ["study"]):
            raise RuleViolation(_("a waiver covers only coded use in this study (the data must be "
                                  "de-identified)"),
                                field="scopes", clause=ethics.WAIVER_CLAUSES[waiver.ground])
        scopes = ["study"]
    else:
        if not data.form_id or data.waiver_id:
            raise InvalidInput(_("consent names the form version the subject signed"),
                               field="form_id")
        form = get_consent_form(session, data.form_id)
        if form.study_id != study.id:
            raise NotFound(_("no such consent form in this study"),
                           field="form_id")
        if form.consent_type != data.consent_type:
            raise InvalidInput(_("form version {version} is a {consent_type} consent form").format(
                                   version=form.version, consent_type=form.consent_type),
                               field="form_id")
        need = REQUIRED_SCOPE[data.consent_type]
        if need not in scopes:
            raise InvalidInput(_("{consent_type} consent must include the scope {need!r}").format(
                                   consent_type=data.consent_type, need=need), field="scopes")
    closed = enrolment_problem(session, study_id=study.id, at=dt.datetime.now(dt.UTC))
    if closed:
        raise RuleViolation(_("consent cannot be recorded: {problem}").format(problem=closed),
                            field="study",
                            clause=CLAUSE_CONSENT)
    return CheckedConsent(form, waiver, scopes, given_at)


def record_consent(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                   subject_id: str, data: ConsentIn) -> ConsentRecord:
    """Record a subject's consent, a re-consent to a newer form version, or their coverage by
    an approved waiver. The person who obtained it is the actor. Audited."""
    require(actor, Perm.CONSENT_RECORD, study=study_code)
    study = registry.get_study(session, study_code)
    subject = _subject_in(session, study, subject_id, actor=actor, perm=Perm.CONSENT_RECORD)
    assert_writable(session, study_id=study.id, subject_id=subject.id, actor=actor.username,
                    client=actor.client, kind="consent")
    form, waiver, scopes, given_at = check_consent(session, study_id=study.id, data=data)
    previous = records_of(session, subject.id)
    current = previous[-1] if previous else None
    if current is not None and form is not None and current.form_id == form.id:
        whole = any(w.scope is None for w in _withdrawals(session, current.id))
        if not whole:
            raise Conflict(_("the subject already consented to form version {version}").format(
                               version=form.version), field="form_id")
    if current is not None and given_at < current.given_at:
        raise InvalidInput(_("a re-consent cannot predate the consent it replaces"),
                           field="given_at")
    rec = ConsentRecord(study_id=study.id, subject_id=subject.id,
                        consent_type=data.consent_type, form_id=form.id if form else None,
                        waiver_id=waiver.id if waiver else None, scopes=scopes,
                        given_at=given_at, obtained_by=actor.username,
                        replaces_id=current.id if current else None)
    session.add(rec)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.CONSENT_RECONSENT if current else Action.CONSENT_RECORD,
                  entity_type="consent_record", entity_id=rec.id, study=study.code,
                  subject=subject.code,
                  changes=[Change("consent_type", None, rec.consent_type),
                           Change("form_version", None, form.version if form else None),
                           Change("waiver", None, waiver.ground if waiver else None),
                           Change("scopes", None, scopes),
                           Change("given_at", None, given_at.isoformat()),
                           Change("replaces", None, current.id if current else None)])
    return rec


def withdraw_consent(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                     consent_id: str, data: WithdrawalIn) -> list[ConsentWithdrawal]:
    """Withdraw a subject's current consent, whole (``scopes`` None) or scope by scope. Data
    already entered stays, audited; from ``withdrawn_at`` the withdrawn scopes are refused."""
    require(actor, Perm.CONSENT_RECORD, study=study_code)
    study = registry.get_study(session, study_code)
    rec = session.get(ConsentRecord, consent_id)
    if rec is None or rec.study_id != study.id:
        raise NotFound(_("no such consent record in this study"),
                       field="consent_id")
    subject = _subject_in(session, study, rec.subject_id, actor=actor,
                          perm=Perm.CONSENT_RECORD)
    latest = records_of(session, rec.subject_id)[-1]
    if latest.id != rec.id:
        raise Conflict(_("this consent was replaced by a re-consent; withdraw the current one"),
                       field="consent_id")
    when = zoned(data.withdrawn_at, "withdrawn_at")
    if when < rec.given_at:
        raise InvalidInput(_("withdrawal cannot predate the consent"),
                           field="withdrawn_at")
    if when > dt.datetime.now(dt.UTC) + CLOCK_SKEW:
        raise InvalidInput(_("withdrawal cannot be in the future"),
                           field="withdrawn_at")
    done = _withdrawals(session, rec.id)
    if any(w.scope is None for w in done):
        raise Conflict(_("consent was already withdrawn in whole"), field="consent_id")
    already = {w.scope for w in done}
    if data.scopes is None:
        targets: list[str | None] = [None]
    else:
        if not data.scopes:
            raise InvalidInput(_("name the scopes to withdraw, or withdraw in whole"),
                               field="scopes")
        for s in data.scopes:
            if s not in rec.scopes:
                raise InvalidInput(_("scope {s!r} was not given").format(s=s), field="scopes")
            if s in already:
                raise Conflict(_("scope {s!r} was already withdrawn").format(s=s),
                               field="scopes")
        targets = list(dict.fromkeys(data.scopes))
    out = []
    for scope in targets:
        w = ConsentWithdrawal(consent_id=rec.id, subject_id=rec.subject_id, scope=scope,
                              withdrawn_at=when, recorded_by=actor.username,
                              reason=(data.reason or "").strip() or None)
        session.add(w)
        out.append(w)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.CONSENT_WITHDRAW,
                  entity_type="consent_record", entity_id=rec.id, study=study.code,
                  subject=subject.code, reason=(data.reason or "").strip() or None,
                  changes=[Change("withdrawn", None, "whole" if targets == [None] else targets),
                           Change("withdrawn_at", None, when.isoformat())])
    return out


def consent_history(session: Session, *, actor: Actor, study_code: str,
                    subject_id: str) -> list[dict[str, Any]]:
    require(actor, Perm.CONSENT_READ, study=study_code)
    study = registry.get_study(session, study_code)
    subject = _subject_in(session, study, subject_id, actor=actor, perm=Perm.CONSENT_READ)
    out = []
    for r in records_of(session, subject.id):
        form = session.get(ConsentForm, r.form_id) if r.form_id else None
        out.append({"id": r.id, "consent_type": r.consent_type,
                    "form_version": form.version if form else None, "waiver_id": r.waiver_id,
                    "scopes": r.scopes, "given_at": r.given_at.isoformat(),
                    "obtained_by": r.obtained_by, "replaces_id": r.replaces_id,
                    "withdrawals": [{"scope": w.scope, "withdrawn_at": w.withdrawn_at.isoformat(),
                                     "recorded_by": w.recorded_by, "reason": w.reason}
                                    for w in _withdrawals(session, r.id)]})
    return out


# ---- the checks other packages call ------------------------------------------------------------

def study_readiness(session: Session, *, study_code: str, at: dt.datetime) -> dict[str, Any]:
    """What a page shows: is enrolment/entry open, and if not, why."""
    study = registry.get_study(session, study_code)
    approval, problem = guards.approval_status(session, study_id=study.id, at=at)
    if problem is None and study.status == "closed":
        problem = _("the study is closed")
    return {"open": problem is None, "reason": problem,
            "approval": ethics.approval_public(session, approval) if approval else None}
