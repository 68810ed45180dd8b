"""The retention review (§11.3.4.6 a4: review the security and use of the data five years after
the study ends, and every five years on). A study's end date is recorded once it ends; the
review list shows each study whose review is due and not yet decided; the data security office
records the decision — keep, archive or destroy — with a reason and an electronic signature."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature
from studies.accounts.service import DEFAULT_CONFIG
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry.models import Study
from studies.registry.service import get_study
from studies.retention.models import RetentionReview, StudyEnd

REVIEW_YEARS = 5
CLAUSE = "§11.3.4.6 a4"
MEANINGS = {
    "keep": "保存期审查：继续保存 / Retention review: keep",
    "archive": "保存期审查：归档 / Retention review: archive",
    "destroy": "保存期审查：销毁 / Retention review: destroy",
}


def review_due(ended_on: dt.date, n: int) -> dt.date:
    """The n-th review date: n × 5 years after the end (29 February falls on 28 February)."""
    year = ended_on.year + REVIEW_YEARS * n
    try:
        return ended_on.replace(year=year)
    except ValueError:
        return ended_on.replace(year=year, day=28)


def current_due(ended_on: dt.date, today: dt.date) -> tuple[int, dt.date] | None:
    """The latest review that has fallen due by ``today`` (its number and date), or None."""
    n = 0
    while review_due(ended_on, n + 1) <= today:
        n += 1
    return (n, review_due(ended_on, n)) if n else None


def set_end_date(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
                 ended_on: dt.date, reason: str, today: dt.date) -> StudyEnd:
    study = get_study(session, study_code)
    require(actor, Perm.STUDY_MANAGE, study=study.code)
    if ended_on > today:
        raise InvalidInput(_("ended_on: a study's end date cannot be in the future"),
                           field="ended_on", clause=CLAUSE)
    if not reason.strip():
        raise InvalidInput(_("reason: required"), field="reason")
    row = session.get(StudyEnd, study.id)
    before = row.ended_on.isoformat() if row is not None else None
    if row is None:
        row = StudyEnd(study_id=study.id, ended_on=ended_on, recorded_by=actor.username)
        session.add(row)
    elif row.ended_on != ended_on:
        if session.execute(select(col(RetentionReview.id)).where(
                col(RetentionReview.study_id) == study.id).limit(1)).first() is not None:
            raise Conflict(_("the end date cannot change once a review was decided"),
                           field="ended_on", clause=CLAUSE)
        row.ended_on, row.recorded_by = ended_on, actor.username
    else:
        return row
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.RETENTION_END_DATE, entity_type="study", entity_id=study.id,
                  study=study.code, reason=reason.strip(),
                  changes=[Change("ended_on", before, ended_on.isoformat())])
    return row


@dataclass(frozen=True)
class DueReview:
    study: Study
    ended_on: dt.date
    due_on: dt.date
    review_number: int
    last_decision: str | None


def due_reviews(session: Session, *, actor: Actor, today: dt.date) -> list[DueReview]:
    """Every study whose retention review has fallen due and is not yet decided, the longest
    overdue first."""
    require(actor, Perm.RETENTION_REVIEW)
    return reviews_due(session, today=today)


def reviews_due(session: Session, *, today: dt.date) -> list[DueReview]:
    """:func:`due_reviews` without the permission check, for the Appendix F self-check (which
    checks its own)."""
    out = []
    rows = session.execute(select(Study, StudyEnd).join(
        StudyEnd, col(StudyEnd.study_id) == col(Study.id))).all()
    for study, end in rows:
        due = current_due(end.ended_on, today)
        if due is None:
            continue
        decided = session.execute(select(RetentionReview).where(
            col(RetentionReview.study_id) == study.id)
            .order_by(col(RetentionReview.due_on).desc())).scalars().all()
        if any(r.due_on == due[1] for r in decided):
            continue
        out.append(DueReview(study, end.ended_on, due[1], due[0],
                             decided[0].decision if decided else None))
    return sorted(out, key=lambda d: (d.due_on, d.study.code))


def content_hash(study: Study, due_on: dt.date, decision: str, reason: str) -> str:
    doc = {"study": study.code, "due_on": due_on.isoformat(), "decision": decision,
           "reason": reason}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
                          ).hexdigest()


def decide(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
           due_on: dt.date, decision: str, reason: str, username: str, password: str,
           totp: str | None, today: dt.date,
           config: AuthConfig = DEFAULT_CONFIG) -> tuple[RetentionReview, str, dt.date]:
    """Record the signed decision of the review due on ``due_on``; returns it, its signature
    line and the next review's date."""
    require(actor, Perm.RETENTION_REVIEW)
    study = get_study(session, study_code)
    if decision not in MEANINGS:
        raise InvalidInput(_("decision: keep, archive or destroy"),
                           field="decision", clause=CLAUSE)
    reason = reason.strip()
    if not reason:
        raise InvalidInput(_("reason: required"), field="reason", clause=CLAUSE)
    end = session.get(StudyEnd, study.id)
    if end is None:
        raise Conflict(_("the study has no end date yet: no review is due"),
                       field="study", clause=CLAUSE)
    due = current_due(end.ended_on, today)
    if due is None or due[1] != due_on:
        raise Conflict(_("due_on: the review due is {value}").format(
                           value=due[1].isoformat() if due else 'not yet due'),
                       field="due_on", clause=CLAUSE)
    if session.execute(select(col(RetentionReview.id)).where(
            col(RetentionReview.study_id) == study.id,
            col(RetentionReview.due_on) == due_on)).first() is not None:
        raise Conflict(_("this review was already decided"), field="due_on",
                       clause=CLAUSE)
    sig = signatures.sign(session, ledger, actor=actor, username=username, password=password,
                          totp=totp, meaning=MEANINGS[decision],
                          content_hash=content_hash(study, due_on, decision, reason),
                          entity_type="study", entity_id=study.id, study=study.code,
                          config=config)
    row = RetentionReview(study_id=study.id, due_on=due_on, decision=decision, reason=reason,
                          decided_by=actor.username, decided_at=sig.signed_at,
                          signature_id=sig.id)
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.RETENTION_REVIEW, entity_type="study", entity_id=study.id,
                  study=study.code, reason=reason,
                  changes=[Change("due_on", None, due_on.isoformat()),
                           Change("decision", None, decision),
                           Change("signature", None, sig.id)])
    return row, sig.line(), review_due(end.ended_on, due[0] + 1)


def end_date(session: Session, *, actor: Actor, study_code: str) -> dt.date | None:
    """The study's recorded end date, or None while it runs."""
    study = get_study(session, study_code)
    require(actor, Perm.STUDY_READ, study=study.code)
    row = session.get(StudyEnd, study.id)
    return row.ended_on if row is not None else None


@dataclass(frozen=True)
class RecordedReview:
    study: Study
    review: RetentionReview
    signature: str


def recorded_reviews(session: Session, *, actor: Actor) -> list[RecordedReview]:
    """Every review decision recorded, the latest first, with its signature line."""
    require(actor, Perm.RETENTION_REVIEW)
    rows = session.execute(select(RetentionReview, Study, Signature).join(
        Study, col(Study.id) == col(RetentionReview.study_id)).join(
        Signature, col(Signature.id) == col(RetentionReview.signature_id))
        .order_by(col(RetentionReview.decided_at).desc(), col(Study.code))).all()
    return [RecordedReview(study, review, signatures.view_of(sig).line())
            for review, study, sig in rows]
