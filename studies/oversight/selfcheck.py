"""The Appendix F self-check, live (表F.1 健康医疗数据安全检查表): for each checklist item the
software can evidence, pass / fail / not applicable with the evidence read from the database
now — the ledger's verification and its latest signed checkpoint, the last restore drill,
privileged accounts without a second factor, accounts past their end date still active,
overdue destruction certificates, the cross-border totals, studies due for their retention
review, and the extracts by tier with their approvals. The data security office (and the
auditor) runs it on a page or with ``edc conformance report``; each run is a ledger entry."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail import service as ledger_service
from audit_trail.errors import LedgerIntegrityError
from audit_trail.service import Ledger
from studies.accounts import organisations as orgs
from studies.accounts.models import RoleGrant, User
from studies.extracts import recipients
from studies.extracts.models import ExtractDecision, ExtractRequest
from studies.extracts.service import overdue_requests
from studies.kernel.actor import Actor, require
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l
from studies.kernel.roles import PRIVILEGED, Perm
from studies.retention import service as retention

DRILL_MAX_AGE = dt.timedelta(days=365)  # §11.3.4.6 b4: a restore check at least yearly


class Result(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NA = "n/a"


RESULT_LABELS = {Result.PASS: _l("pass"), Result.FAIL: _l("fail"),
                 Result.NA: _l("not applicable")}


@dataclass(frozen=True)
class Item:
    key: str
    clause: str
    question: str
    result: Result
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    generated_at: dt.datetime
    generated_by: str
    items: list[Item]

    def counts(self) -> dict[Result, int]:
        c = Counter(i.result for i in self.items)
        return {r: c.get(r, 0) for r in Result}


def _ledger(session: Session, vkey: str) -> Item:
    q = (_("Are audit records protected against deletion, change or overwriting?"))
    try:
        rep = ledger_service.verify(session, vkey=vkey)
    except LedgerIntegrityError as exc:
        return Item("ledger", _("§11.3.4.6 a3, F security technology"), q, Result.FAIL, [str(exc)])
    ev = [rep.summary()]
    cps = ledger_service.list_checkpoints(session)
    if cps:
        cp = cps[-1]
        ev.append(f"latest signed checkpoint: size {cp.tree_size}, root "
                  f"{cp.root_hash.hex()[:16]}…, {cp.created_at:%Y-%m-%d %H:%M} UTC ({cp.reason})")
    else:
        ev.append(_("no signed checkpoint yet"))
    ev.append(_("witness cosignatures are held by the witnesses: check them with `edc audit "
                "verify --witness URL --witness-key FILE`"))
    return Item("ledger", _("§11.3.4.6 a3, F security technology"), q,
                Result.PASS if cps else Result.FAIL, ev)


def _drill(session: Session, now: dt.datetime) -> Item:
    q = (_("Is a restore verified at least yearly?"))
    e = ledger_service.latest_entry(session, action=Action.BACKUP_DRILL)
    if e is None:
        return Item("drill", "§11.3.4.6 b4", q, Result.FAIL,
                    [_("no restore drill recorded: run `edc backup drill`")])
    when = dt.datetime.strptime(e.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    ok = e.outcome == "success" and now - when <= DRILL_MAX_AGE
    ev = [f"last drill {e.ts[:19]}Z: {e.outcome} — {e.reason or ''}".rstrip(" —")]
    if now - when > DRILL_MAX_AGE:
        ev.append(_("over a year ago"))
    return Item("drill", "§11.3.4.6 b4", q, Result.PASS if ok else Result.FAIL, ev)


def _second_factor(session: Session) -> Item:
    q = (_("Do privileged accounts have a second factor?"))
    rows = session.execute(select(
        col(User.username), col(User.totp_enabled), col(RoleGrant.role)).join(
        RoleGrant, col(RoleGrant.user_id) == col(User.id)).where(
        col(User.is_active).is_(True))).all()
    privileged = {r.username for r in rows if r.role in PRIVILEGED}
    without = sorted({r.username for r in rows if r.role in PRIVILEGED and not r.totp_enabled})
    if not privileged:
        return Item("second_factor", _("F security technology: identification"), q, Result.NA,
                    [_("no active privileged account")])
    ev = [f"{len(privileged)} active privileged accounts, {len(without)} without a second "
          f"factor"] + [f"without: {u}" for u in without]
    return Item("second_factor", _("F security technology: identification"), q,
                Result.FAIL if without else Result.PASS, ev)


def _ended_accounts(session: Session, today: dt.date) -> Item:
    q = (_("Are accounts past their end date deactivated?"))
    ended = session.execute(select(col(User.username), col(User.end_date)).where(
        col(User.is_active).is_(True), col(User.end_date).is_not(None),
        col(User.end_date) < today).order_by(col(User.username))).all()
    ev = [f"{len(ended)} accounts past their end date still active (they cannot log in)"]
    ev += [f"{u}: ended {d.isoformat() if d else ''}" for u, d in ended]
    return Item("ended_accounts", _("F security technology: expired accounts"), q,
                Result.FAIL if ended else Result.PASS, ev)


def _destruction(session: Session, today: dt.date) -> Item:
    q = (_("Is destruction confirmed when use ends?"))
    built = session.execute(select(col(ExtractRequest.id)).where(
        col(ExtractRequest.built_at).is_not(None))).all()
    if not built:
        return Item("destruction", _("§7 m, F use and disclosure"), q, Result.NA,
                    [_("no extract delivered")])
    late = overdue_requests(session, today=today)
    ev = [f"{len(built)} extracts delivered, {len(late)} destruction certificates overdue"]
    ev += [f"overdue: {r.study_code} {r.tier} to {r.recipient_org}, use ended "
           f"{r.use_until.isoformat()}" for r in late]
    return Item("destruction", _("§7 m, F use and disclosure"), q,
                Result.FAIL if late else Result.PASS, ev)


def _cross_border(session: Session) -> Item:
    q = (_("Is data abroad kept within 250 records, or approved by the authority?"))
    lines, over = [], False
    for org in orgs.list_organisations(session):
        st = recipients.status_of(session, org)
        if not st.abroad:
            continue
        limit = (f"limit {st.limit}" if st.limit is not None
                 else f"authority approval {st.approval_reference}")
        lines.append(f"{org.label} ({st.country}): {st.total} records about persons, {limit}")
        over = over or (st.limit is not None and st.total > st.limit)
    if not lines:
        return Item("cross_border", "§7 o–p", q, Result.NA,
                    [_("no recipient organisation abroad")])
    return Item("cross_border", "§7 o–p", q, Result.FAIL if over else Result.PASS, lines)


def _retention(session: Session, today: dt.date) -> Item:
    q = (_("Is each ended study reviewed every five years?"))
    due = retention.reviews_due(session, today=today)
    ev = [f"{len(due)} studies due for their retention review"]
    ev += [f"{d.study.code}: review due {d.due_on.isoformat()}" for d in due]
    return Item("retention", "§11.3.4.6 a4", q, Result.FAIL if due else Result.PASS, ev)


def _extracts(session: Session) -> Item:
    q = (_("Do extracts have their approvals?"))
    reqs = session.execute(select(ExtractRequest)).scalars().all()
    if not reqs:
        return Item("extracts", _("§11.3.4.1 c, F security management"), q, Result.NA,
                    [_("no extract requested")])
    decisions = session.execute(select(col(ExtractDecision.request_id), col(ExtractDecision.kind),
                                       col(ExtractDecision.approve))).all()
    approved: dict[str, set[str]] = {}
    for rid, kind, yes in decisions:
        if yes:
            approved.setdefault(rid, set()).add(kind)
    by_tier: dict[str, Counter[str]] = {}
    unapproved = []
    for r in reqs:
        by_tier.setdefault(r.tier, Counter())[r.status] += 1
        if r.built_at is not None and not approved.get(r.id, set()) & {"officer", "vote"}:
            unapproved.append(r)
    ev = [f"{tier}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items()))
          for tier, c in sorted(by_tier.items())]
    ev.append(f"{sum(len(k) for k in approved.values())} approving signed decisions")
    ev += [f"built without an approval: {r.study_code} {r.tier} {r.id}" for r in unapproved]
    return Item("extracts", _("§11.3.4.1 c, F security management"), q,
                Result.FAIL if unapproved else Result.PASS, ev)


def run(session: Session, ledger: Ledger, *, actor: Actor, vkey: str,
        now: dt.datetime) -> Report:
    """Run every check now; the run is a ledger entry naming its results."""
    require(actor, Perm.AUDIT_VERIFY)
    today = now.date()
    items = [_ledger(session, vkey), _drill(session, now), _second_factor(session),
             _ended_accounts(session, today), _destruction(session, today),
             _cross_border(session), _retention(session, today), _extracts(session)]
    report = Report(now, actor.username, items)
    c = report.counts()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.OVERSIGHT_SELFCHECK, entity_type="selfcheck",
                  entity_id=now.strftime("%Y%m%dT%H%M%SZ"),
                  reason=f"Appendix F self-check: {c[Result.PASS]} pass, {c[Result.FAIL]} fail, "
                         f"{c[Result.NA]} n/a")
    return report
