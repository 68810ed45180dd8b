"""The write guards every domain needs, in one place: the approval gate (a current ethics
approval of the protocol in force), the consent gate (may this subject's data be entered or used
for a scope), and the lock check (is this data locked, and does a signed unlock allow the
change). They read models only, so any domain's service may call them.

- :func:`assert_enrolment_allowed` — a current ethics approval of the current protocol version;
- :func:`assert_entry_allowed` — that, plus a valid consent (or an approved waiver) covering
  use in the study, not withdrawn, on the form version the committee currently requires;
- :func:`may_use` / :func:`assert_may_use` — may this subject's data be used for scope X as of
  time T? (extracts filter on it);
- :func:`assert_writable` — refuse (423, audited) a write to locked data unless an active
  signed unlock lists it (§11.3.4.7 a);
- :func:`require_for_subject` / :func:`require_for_site` — the actor holds the permission at
  the subject's (site's) site, not only somewhere in the study (§11.3.4.1 a).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.base import execute_core
from audit_trail.service import Change, Ledger
from studies.consent.models import SCOPES, ConsentForm, ConsentRecord, ConsentWithdrawal
from studies.entry.models import FormRecord
from studies.ethics.models import APPROVING, ConsentWaiver, EthicsApproval
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, Locked, NotFound, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.locks.models import DataLock, LockSettings, UnlockRequest
from studies.registry.models import ProtocolVersion, Site, Study
from studies.subjects.models import Subject

CLAUSE_CONSENT = "§11.3.4.2"
CLAUSE_USE = "§7 a"
CLAUSE_LOCK = "§11.3.4.7 a"


def zoned(when: dt.datetime, field: str) -> dt.datetime:
    """A time given with its zone, in UTC; a naive time is refused naming ``field``."""
    if when.tzinfo is None:
        raise InvalidInput(_("give the time with its time zone"), field=field)
    return when.astimezone(dt.UTC)


def as_utc(when: dt.datetime) -> dt.datetime:
    """A stored time (SQLite returns naive UTC) as an aware one."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


# ---- scope: the target's site -------------------------------------------------------------------

def require_for_site(session: Session, actor: Actor, perm: Perm, *, study: Study,
                     site_id: str) -> Site:
    """Refuse (403, audited) unless ``actor`` holds ``perm`` at this site of ``study`` (a
    grant for the whole study, or one whose scope includes the site). Returns the site."""
    site = session.get(Site, site_id)
    if site is None or site.study_id != study.id:
        raise InvalidInput(_("site is not a site of this study"), field="site")
    require(actor, perm, study=study.code, site=site.code)
    return site


def require_for_subject(session: Session, actor: Actor, perm: Perm, *, study: Study,
                        subject: Subject) -> Site:
    """Refuse (403, audited) unless ``actor`` holds ``perm`` at the subject's site."""
    return require_for_site(session, actor, perm, study=study, site_id=subject.site_id)


def site_codes_of(session: Session, study_id: str) -> dict[str, str]:
    """site id -> site code, for filtering a study's rows to the actor's sites."""
    return dict(session.execute(select(col(Site.id), col(Site.code)).where(
        col(Site.study_id) == study_id)).tuples().all())


# ---- the approval gate -------------------------------------------------------------------------

_PV = ProtocolVersion.__table__  # type: ignore[attr-defined]
_PROTOCOL_AT = (select(_PV).where(_PV.c.study_id == bindparam("study_id"),
                                  _PV.c.created_at <= bindparam("at"))
                .order_by(_PV.c.number.desc()).limit(1))


def current_protocol(session: Session, *, study_id: str, at: dt.datetime) -> Any:
    """The protocol version in force at ``at``: the newest one registered by then (a row with
    ``ProtocolVersion``'s attribute names), or None."""
    return execute_core(session, _PROTOCOL_AT, {"study_id": study_id, "at": at}).first()


# The statements on every save's path read rows (attribute names as the models'), built once.
# The approval gate's: the protocol version in force at ``at`` and the ethics decisions on it
# recorded by then, newest first, in one query (one row with no decision when there is none;
# no row when no protocol was registered by then).
_EA = EthicsApproval.__table__  # type: ignore[attr-defined]
_PV_AT = _PROTOCOL_AT.subquery("pv")
_DECISIONS_AT = (
    select(_PV_AT.c.id.label("pv_id"), _PV_AT.c.label.label("pv_label"), *_EA.c)
    .select_from(_PV_AT)
    .outerjoin(_EA, and_(_EA.c.protocol_version_id == _PV_AT.c.id,
                         _EA.c.recorded_at <= bindparam("at")))
    .order_by(_EA.c.decided_on.desc(), _EA.c.recorded_at.desc()))


def approval_status(session: Session, *, study_id: str,
                    at: dt.datetime) -> tuple[Any, str | None]:
    """(the current approval, None) or (None, why there is none) — "current" meaning an
    approving decision, in force at ``at``, on the protocol version in force at ``at`` (a row
    with ``EthicsApproval``'s attribute names)."""
    rows = execute_core(session, _DECISIONS_AT, {"study_id": study_id, "at": at}).all()
    if not rows:
        return None, (_("the study has no registered protocol"))
    label = rows[0].pv_label
    day = at.astimezone(dt.UTC).date()
    decisions = [r for r in rows if r.id is not None]
    if not decisions:
        older = session.execute(select(col(EthicsApproval.id)).where(
            col(EthicsApproval.study_id) == study_id,
            col(EthicsApproval.decision).in_(APPROVING))).first()
        if older:
            return None, (_("protocol version {label} (an amendment) has not been approved by the "
                            "ethics committee yet").format(label=label))
        return None, (_("protocol version {label} has no ethics approval").format(label=label))
    latest = decisions[0]
    if latest.decision not in APPROVING:
        return None, (_("the ethics committee rejected protocol version {label} "
                        "({reference})").format(label=label, reference=latest.reference))
    if latest.decided_on > day:
        day_s = latest.decided_on.isoformat()
        return None, (_("the approval of protocol {label} takes effect on {day_s}").format(
                          label=label, day_s=day_s))
    if latest.expires_on is not None and latest.expires_on < day:
        exp = latest.expires_on.isoformat()
        return None, (_("the ethics approval {reference} of protocol {label} expired on "
                        "{exp}").format(reference=latest.reference, label=label, exp=exp))
    return latest, None


# ---- the consent gate --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Effective:
    record: Any  # a row with ConsentRecord's attribute names, or None
    withdrawn: frozenset[str | None]


# The consent in force at ``at`` (the latest given by then) and what was withdrawn of it by
# then, in one query: one row per withdrawal, or one row with no withdrawal.
_CR, _CW = ConsentRecord.__table__, ConsentWithdrawal.__table__  # type: ignore[attr-defined]
_CONSENT_COLUMNS = tuple(_CR.c)
_CONSENT_AT = (
    select(*_CONSENT_COLUMNS, _CW.c.id.label("withdrawal_id"),
           _CW.c.scope.label("withdrawal_scope"))
    .select_from(_CR)
    .outerjoin(_CW, and_(_CW.c.consent_id == _CR.c.id, _CW.c.withdrawn_at <= bindparam("at")))
    .where(_CR.c.id == select(_CR.c.id).where(
        _CR.c.subject_id == bindparam("subject_id"), _CR.c.given_at <= bindparam("at"))
        .order_by(_CR.c.given_at.desc(), _CR.c.recorded_at.desc())
        .limit(1).scalar_subquery()))


def _effective(session: Session, subject_id: str, at: dt.datetime) -> _Effective:
    rows = execute_core(session, _CONSENT_AT, {"subject_id": subject_id, "at": at}).all()
    if not rows:
        return _Effective(None, frozenset())
    # A withdrawal's scope NULL means the whole consent; no withdrawal at all has no id.
    return _Effective(rows[0], frozenset(r.withdrawal_scope for r in rows
                                         if r.withdrawal_id is not None))


def use_problem(session: Session, *, subject_id: str, scope: str,
                at: dt.datetime) -> str | None:
    """Why this subject's data may not be used for ``scope`` at ``at`` (None if it may)."""
    if scope not in SCOPES:
        raise InvalidInput(_("unknown scope {scope!r} (known: {known})").format(
            scope=scope, known=", ".join(SCOPES)),
                           field="scope")
    at = zoned(at, "at")
    return _problem_of(session, _effective(session, subject_id, at), scope)


def _problem_of(session: Session, eff: _Effective, scope: str) -> str | None:
    rec = eff.record
    if rec is None:
        return (_("the subject has no consent or approved waiver on record"))
    if None in eff.withdrawn:
        return _("the subject withdrew consent")
    if scope in eff.withdrawn:
        return _("the subject withdrew consent for {scope!r}").format(scope=scope)
    if scope not in rec.scopes:
        return _("the subject's consent does not cover {scope!r}").format(scope=scope)
    if rec.waiver_id:
        w = session.get(ConsentWaiver, rec.waiver_id)
        if w is None or w.status != "approved":
            return _("the consent waiver is not approved")
    return None


def may_use(session: Session, *, subject_id: str, scope: str, at: dt.datetime) -> bool:
    """May this subject's data be used for ``scope`` as of ``at``? (§11.3.4.2, §7 a)

    Scopes: ``study`` (coded use in this study), ``identifiable``, ``deidentified_future``,
    ``cross_border``, ``contact``. True only if the consent in force at ``at`` (the latest
    given by then) grants the scope and it was not withdrawn, whole or for that scope, by
    ``at``. Read-only.
    """
    return use_problem(session, subject_id=subject_id, scope=scope, at=at) is None


def assert_may_use(session: Session, *, subject_id: str, scope: str, at: dt.datetime) -> None:
    """:func:`may_use`, raising :class:`RuleViolation` with the reason instead of False."""
    problem = use_problem(session, subject_id=subject_id, scope=scope, at=at)
    if problem:
        raise RuleViolation(problem, field="scope", clause=f"{CLAUSE_CONSENT}, {CLAUSE_USE}")


def enrolment_problem(session: Session, *, study_id: str, at: dt.datetime) -> str | None:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(_("no such study"), field="study_id")
    return _study_problem(session, study_id, study.status, at)


def _study_problem(session: Session, study_id: str, status: str,
                   at: dt.datetime) -> str | None:
    if status == "closed":
        return _("the study is closed")
    _x, problem = approval_status(session, study_id=study_id, at=zoned(at, "at"))
    return problem


def assert_enrolment_allowed(session: Session, *, study_id: str, at: dt.datetime) -> None:
    """Refuse enrolment unless the study has a current ethics approval of its current protocol
    version (§11.3.4.2): an amendment or an expiry stops enrolment until approved again."""
    problem = enrolment_problem(session, study_id=study_id, at=at)
    if problem:
        raise RuleViolation(_("no enrolment: {problem}").format(problem=problem), field="study",
                            clause=CLAUSE_CONSENT)


# The newest consent form (by ``at``) that requires re-consent and is newer than the signed one.
_NEWEST, _SIGNED = ConsentForm.__table__.alias("newest"), ConsentForm.__table__.alias("signed")  # type: ignore[attr-defined]  # noqa: E501


_NEWER_FORM = (
    select(_NEWEST.c.version, _SIGNED.c.version)
    .join(_SIGNED, _SIGNED.c.id == bindparam("form_id"))
    .where(_NEWEST.c.study_id == bindparam("study_id"),
           _NEWEST.c.consent_type == bindparam("consent_type"), _NEWEST.c.requires_reconsent,
           _NEWEST.c.created_at <= bindparam("at"), _NEWEST.c.number > _SIGNED.c.number)
    .order_by(_NEWEST.c.number.desc()).limit(1))


_SU, _ST = Subject.__table__, Study.__table__  # type: ignore[attr-defined]
_SUBJECT_STUDY = (select(_SU.c.study_id, _ST.c.status).join(_ST, _ST.c.id == _SU.c.study_id)
                  .where(_SU.c.id == bindparam("subject_id")))


def entry_problem(session: Session, *, subject_id: str, at: dt.datetime) -> tuple[str, str] | None:
    """(reason, clause) why data may not be entered for this subject at ``at``, or None."""
    subject = execute_core(session, _SUBJECT_STUDY, {"subject_id": subject_id}).first()
    if subject is None:
        raise NotFound(_("no such subject"), field="subject_id")
    problem = _study_problem(session, subject.study_id, subject.status, at)
    if problem:
        return problem, CLAUSE_CONSENT
    at = zoned(at, "at")
    eff = _effective(session, subject_id, at)
    problem = _problem_of(session, eff, "study")
    if problem and eff.record is not None and eff.record.consent_type == "broad" \
            and None not in eff.withdrawn and "deidentified_future" not in eff.withdrawn:
        problem = None  # broad consent covers de-identified research use (§11.3.4.2)
    if problem:
        return problem, CLAUSE_CONSENT
    rec = eff.record
    if rec is not None and rec.form_id:
        newer = execute_core(session, _NEWER_FORM, dict(
            form_id=rec.form_id, study_id=subject.study_id, consent_type=rec.consent_type,
            at=at)).first()
        if newer is not None:
            return (_("the subject must re-consent to form version {value} (signed "
                      "{value2})").format(value=newer[0], value2=newer[1]), CLAUSE_CONSENT)
    return None


def assert_entry_allowed(session: Session, *, subject_id: str, at: dt.datetime) -> None:
    """Refuse data entry for a subject without a current ethics approval of the current
    protocol version, or without a valid consent (or approved waiver) covering use in the
    study — withdrawn, or signed on a form version superseded by one that requires
    re-consent (§11.3.4.2)."""
    found = entry_problem(session, subject_id=subject_id, at=at)
    if found:
        raise RuleViolation(_("no data entry: {problem}").format(problem=found[0]),
                            field="subject_id", clause=found[1])


# ---- the lock check ----------------------------------------------------------------------------

def lock_settings(session: Session, study_id: str) -> LockSettings:
    """A study's lock settings (the defaults when none were saved)."""
    return session.get(LockSettings, study_id) or LockSettings(study_id=study_id)


def serialise(session: Session) -> None:
    """Take the ledger head's row lock (every writer takes it to append): setting a lock and
    every write path checked by :func:`assert_writable` are serialised on it, so an edit
    concurrent with setting a lock either commits before it or sees it and is refused."""
    Ledger.lock_head(session)


_DL = DataLock.__table__  # type: ignore[attr-defined]
_LOCKS = select(_DL).where(_DL.c.study_id == bindparam("study_id")).order_by(_DL.c.set_at)


def covers(lock: Any, site_id: str | None, subject_id: str | None,
           form_id: str | None) -> bool:
    """Does ``lock`` (a ``DataLock`` or a row of one) cover data of this site, subject or
    form?"""
    if lock.scope == "study":
        return True
    if lock.scope == "site":
        return site_id is not None and lock.site_id == site_id
    if lock.scope == "form":
        return form_id is not None and lock.form_id == form_id
    return subject_id is not None and subject_id in lock.subject_ids


def _permits(req: UnlockRequest, subject_id: str | None, form_id: str | None,
             fields: list[str] | None) -> bool:
    if subject_id is None:
        return False
    for c in req.changes:
        if c.get("subject_id") != subject_id:
            continue
        if c.get("form_id") and c["form_id"] != form_id:
            continue
        listed = c.get("fields")
        if listed and fields is not None and not set(fields) <= set(listed):
            continue
        if listed and form_id is None:
            continue
        return True
    return False


def active_unlocks(session: Session, study_id: str, at: dt.datetime) -> list[UnlockRequest]:
    rows = session.execute(select(UnlockRequest).where(
        col(UnlockRequest.study_id) == study_id, col(UnlockRequest.status) == "active")).scalars()
    return [r for r in rows if r.ends_at is None or as_utc(r.ends_at) > at]


def is_locked(session: Session, *, study_id: str, site_id: str | None,
              subject_id: str | None, form_id: str | None,
              at: dt.datetime | None = None) -> bool:
    """Is this data covered by a lock that no active signed unlock opens (read only: what a
    page shows; a write still goes through :func:`assert_writable`)."""
    at = as_utc(at) if at else dt.datetime.now(dt.UTC)
    locks = execute_core(session, _LOCKS, {"study_id": study_id}).all()
    if not any(covers(lk, site_id, subject_id, form_id) for lk in locks):
        return False
    return not any(_permits(req, subject_id, form_id, None)
                   for req in active_unlocks(session, study_id, at))


def assert_writable(session: Session, *, study_id: str | None = None,
                    subject_id: str | None = None, form_id: str | None = None,
                    field: str | None = None, fields: list[str] | None = None,
                    record_id: str | None = None, site_id: str | None = None,
                    at: dt.datetime | None = None, actor: str | None = None,
                    client: str | None = None, ledger: Ledger | None = None,
                    kind: str = "entry") -> str | None:
    """Refuse (423 ``Locked``, audited) a write to data covered by a lock, unless an active
    signed unlock lists it; returns the id of that unlock (None when nothing is locked).

    Name the data by ids (or ``record_id`` of a form record); ``field``/``fields`` are the
    fields being changed (None: not known yet — the unlock must list the subject and form).
    ``kind`` "query" is allowed while locked if the study's lock settings say so. Given a
    ``ledger``, a write allowed by an unlock appends ``unlock.change`` naming the unlock, so
    every change during the unlock is linked to it. Serialises on the ledger head first."""
    at = as_utc(at) if at else dt.datetime.now(dt.UTC)
    if record_id is not None:
        rec = session.get(FormRecord, record_id)
        if rec is not None:
            study_id, subject_id, form_id = rec.study_id, rec.subject_id, rec.form_id
    if study_id is None:
        return None
    serialise(session)
    locks = execute_core(session, _LOCKS, {"study_id": study_id}).all()
    if not locks:
        return None
    subject = session.get(Subject, subject_id) if subject_id else None
    if subject is not None and site_id is None:
        site_id = subject.site_id
    covering = [lk for lk in locks if covers(lk, site_id, subject_id, form_id)]
    if not covering:
        return None
    if kind == "query" and lock_settings(session, study_id).allow_query_answers:
        return None
    names = list(fields) if fields is not None else ([field] if field else None)
    study = session.get(Study, study_id)
    code = study.code if study else study_id
    for req in active_unlocks(session, study_id, at):
        if kind in ("entry", "sdv", "query") and _permits(req, subject_id, form_id, names):
            if ledger is not None and kind == "entry":
                ledger.append(
                    session, actor=actor or "(unknown)", client=client, action=Action.UNLOCK_CHANGE,
                    entity_type="unlock_request", entity_id=req.id, study=code,
                    subject=subject.code if subject else None,
                    reason=_("change made under unlock {id}").format(id=req.id),
                    changes=[Change("record", None, record_id),
                             Change("fields", None, names)])
            return req.id
    lock = covering[0]
    when = as_utc(lock.set_at).strftime("%Y-%m-%d %H:%M UTC")
    raise Locked(
        _("locked: {label}, by {set_by} at {when} (lock {id})").format(
            label=lock.label, set_by=lock.set_by, when=when, id=lock.id), field=field,
                 clause=CLAUSE_LOCK,
        audit=dict(actor=actor or "(unknown)", action=Action.LOCK_REFUSED,
                   entity_type="data_lock", entity_id=lock.id, study=code,
                   subject=subject.code if subject else None, outcome="denied",
                   client=client, reason=f"{kind} refused while locked: {lock.label}"[:500]))
