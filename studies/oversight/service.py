"""Abnormal access (§11.1.2.4, §11.3.4.9 d): the rules that flag it, the flags, their
acknowledgement.

The rules look at what users did: each view of clinical data (the ``read.*`` entries) and each
refusal. ``observe`` runs off the request path, in the transaction that writes a batch of read
entries (``edc/jobs/reads.py``): access from outside the hospital's networks, out of working
hours (in the display time zone), many subjects read in a short window, and repeated refusals.
A rule raises one flag per episode: while a user has an open (unacknowledged) flag of a rule,
the rule raises no other for them. Each flag is audited and sent to the data security officer's
inbox; the officer acknowledges it with a note (audited).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger, canonical_ts
from studies.accounts.config import IpNetwork, in_networks
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import Msg, _, _l
from studies.kernel.roles import Perm, Role
from studies.oversight.models import AccessFlag
from studies.registry.models import Study
from studies.signoff.service import notify

CLAUSE = "§11.3.4.9 d"
RULE_LABELS = {
    "outside_network": _l("Access from outside the hospital network"),
    "out_of_hours": _l("Access out of working hours"),
    "bulk_reads": _l("Bulk reads in a short time"),
    "repeated_refusals": _l("Repeated refusals"),
}


@dataclass(frozen=True)
class Access:
    """One thing a user did that the rules look at: a view of clinical data or a refusal."""

    kind: str  # "read" | "refusal"
    username: str
    at: dt.datetime
    client: str | None = None
    study: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class AccessRules:
    """The deployment's rules (settings ``EDC_HOSPITAL_NETWORKS``, ``EDC_WORKING_HOURS``,
    ``EDC_WORKING_DAYS``, ``EDC_BULK_READ_*``, ``EDC_REFUSALS_*``). Empty networks or hours
    switch that rule off."""

    networks: tuple[IpNetwork, ...] = ()
    hours: tuple[dt.time, dt.time] | None = (dt.time(8), dt.time(18))
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO weekdays, Monday = 1
    zone: str = "Asia/Shanghai"
    bulk_subjects: int = 50
    bulk_window: dt.timedelta = dt.timedelta(minutes=10)
    refusals: int = 5
    refusal_window: dt.timedelta = dt.timedelta(minutes=10)


def parse_hours(text: str) -> tuple[dt.time, dt.time] | None:
    """``08:00-18:00`` (start inclusive, end exclusive); empty: no out-of-hours rule."""
    text = text.strip()
    if not text:
        return None
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        a, b = dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"working hours must be HH:MM-HH:MM, not {text!r}") from None
    if a >= b:
        raise ValueError(f"working hours must start before they end: {text!r}")
    return a, b


def parse_days(text: str) -> frozenset[int]:
    """ISO weekday numbers, comma-separated (Monday = 1 … Sunday = 7)."""
    days = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or not 1 <= int(part) <= 7:
            raise ValueError(f"working days are ISO weekday numbers 1–7, not {part!r}")
        days.add(int(part))
    return frozenset(days)


def out_of_hours(rules: AccessRules, at: dt.datetime) -> bool:
    if rules.hours is None:
        return False
    local = at.astimezone(ZoneInfo(rules.zone))
    start, end = rules.hours
    return local.isoweekday() not in rules.days or not start <= local.time() < end


def _count_since(session: Session, username: str, since: dt.datetime, *,
                 reads: bool) -> int:
    q = select(func.count(func.distinct(col(LedgerEntry.subject))) if reads
               else func.count()).where(col(LedgerEntry.actor) == username,
                                         col(LedgerEntry.ts) >= canonical_ts(since))
    q = q.where(col(LedgerEntry.action).like("read.%")) if reads else \
        q.where(col(LedgerEntry.outcome) == "denied")
    return int(session.execute(q).scalar_one())


def _findings(session: Session, rules: AccessRules, username: str,
              seen: Sequence[Access]) -> dict[str, tuple[Access, str]]:
    """What each rule finds in one user's accesses: rule → (the access, what was seen)."""
    out: dict[str, tuple[Access, str]] = {}
    for a in seen:
        if rules.networks and "outside_network" not in out and a.client \
                and not in_networks(a.client, rules.networks):
            out["outside_network"] = (a, f"{a.kind} from {a.client}")
        if "out_of_hours" not in out and out_of_hours(rules, a.at):
            local = a.at.astimezone(ZoneInfo(rules.zone))
            out["out_of_hours"] = (a, f"{a.kind} at {local:%Y-%m-%d %H:%M} ({rules.zone})")
    last = max(seen, key=lambda a: a.at)
    reads = [a for a in seen if a.kind == "read"]
    if reads:
        n = _count_since(session, username, last.at - rules.bulk_window, reads=True)
        if n >= rules.bulk_subjects:
            out["bulk_reads"] = (reads[-1], f"{n} subjects read within "
                                 f"{int(rules.bulk_window.total_seconds() // 60)} min")
    refusals = [a for a in seen if a.kind == "refusal"]
    if refusals:
        n = _count_since(session, username, last.at - rules.refusal_window, reads=False)
        if n >= rules.refusals:
            out["repeated_refusals"] = (refusals[-1], f"{n} refusals within "
                                        f"{int(rules.refusal_window.total_seconds() // 60)} min")
    return out


def observe(session: Session, ledger: Ledger, *, accesses: Iterable[Access],
            rules: AccessRules) -> list[AccessFlag]:
    """Run the rules over a batch of accesses (their read entries already appended in this
    transaction) and raise the flags they find; returns the flags raised."""
    by_user: dict[str, list[Access]] = {}
    for a in accesses:
        if a.username and not a.username.startswith("("):  # "(anonymous)", "(system)"
            by_user.setdefault(a.username, []).append(a)
    raised = []
    for username, seen in by_user.items():
        found = _findings(session, rules, username, seen)
        if not found:
            continue
        open_rules = set(session.execute(select(col(AccessFlag.rule)).where(
            col(AccessFlag.username) == username,
            col(AccessFlag.acknowledged_at).is_(None))).scalars())
        for rule, (a, detail) in found.items():
            if rule not in open_rules:
                raised.append(_raise(session, ledger, rule, username, a, detail))
    return raised


def _raise(session: Session, ledger: Ledger, rule: str, username: str, a: Access,
           detail: str) -> AccessFlag:
    flag = AccessFlag(rule=rule, username=username, study=a.study, client=a.client,
                      seen_at=a.at, detail=detail[:2000])
    session.add(flag)
    session.flush()
    ledger.append(session, actor="(system)", action=Action.ACCESS_FLAG_RAISE,
                  entity_type="access_flag", entity_id=flag.id, study=a.study,
                  client=a.client, reason=f"{rule}: {username}: {detail}"[:500])
    study = session.execute(select(Study).where(col(Study.code) == a.study)).scalar_one_or_none() \
        if a.study else None
    notify(session, study=study, kind=f"access_flag.{rule}", by="(system)",
           audience=(Role.SECURITY_OFFICER,), link="/audit/flags",
           text=Msg("Abnormal access — {value}: {username}, {detail}",
                    value=RULE_LABELS[rule], username=username, detail=detail))
    return flag


def flags(session: Session, *, actor: Actor, open_only: bool = False,
          limit: int = 200) -> list[AccessFlag]:
    """The flags, newest first (the audit page)."""
    require(actor, Perm.ACCESS_FLAG_READ)
    q = select(AccessFlag).order_by(col(AccessFlag.created_at).desc()).limit(limit)
    if open_only:
        q = q.where(col(AccessFlag.acknowledged_at).is_(None))
    return list(session.execute(q).scalars())


def flag(session: Session, *, actor: Actor, flag_id: str) -> AccessFlag:
    require(actor, Perm.ACCESS_FLAG_READ)
    found = session.get(AccessFlag, flag_id)
    if found is None:
        raise NotFound(_("no such flag"), field="flag")
    return found


def acknowledge(session: Session, ledger: Ledger, *, actor: Actor, flag_id: str, note: str,
                now: dt.datetime) -> AccessFlag:
    """The data security officer acknowledges a flag with a note (what was found, what was
    done); this closes the episode. Audited."""
    require(actor, Perm.ACCESS_FLAG_ACK)
    note = note.strip()
    if not note:
        raise InvalidInput(_("a note is required: what you found and did"),
                           field="note", clause=CLAUSE)
    flag = session.get(AccessFlag, flag_id)
    if flag is None:
        raise NotFound(_("no such flag"), field="flag")
    if flag.acknowledged_at is not None:
        raise Conflict(_("already acknowledged by {acknowledged_by}").format(
                           acknowledged_by=flag.acknowledged_by), field="flag")
    flag.acknowledged_by, flag.acknowledged_at, flag.note = actor.username, now, note[:4000]
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.ACCESS_FLAG_ACKNOWLEDGE,
                  entity_type="access_flag", entity_id=flag.id, study=flag.study,
                  client=actor.client, reason=note[:500])
    return flag
