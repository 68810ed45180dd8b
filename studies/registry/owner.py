"""The study's data owner (数据责任人, §11.3.4.4 a: 确定数据的责任人……如碰到人员调动等情况，需要对
科研数据的责任人及时变更). Each study names one responsible person; a handover is proposed and
signed by the outgoing owner — by the study's manager for the first naming, by the study's
manager or an administrator when the outgoing owner has left (account deactivated or past its
end date) — and takes effect when the incoming person accepts and signs. Both steps are ledger
entries; the history of owners is kept and shown."""

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
from studies.accounts.models import RoleGrant, Signature, User
from studies.accounts.service import DEFAULT_CONFIG, find_user
from studies.kernel.actor import Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import _, bilingual
from studies.kernel.labels import label
from studies.kernel.roles import Perm, Role
from studies.registry.models import OwnerHandover, Study
from studies.registry.service import get_study

CLAUSE = "§11.3.4.4 a"
# what the signers sign, in both languages (a signature means the same to every reader)
PROPOSE_MEANING = bilingual("Hand over the data ownership")
ACCEPT_MEANING = bilingual("Accept the data ownership")
# Roles whose holders may be a study's data owner: the study team, not the office roles.
OWNER_ROLES = frozenset({Role.PRINCIPAL_INVESTIGATOR, Role.INVESTIGATOR, Role.DATA_MANAGER,
                         Role.STATISTICIAN, Role.MONITOR})


def current(session: Session, study: Study) -> OwnerHandover | None:
    """The accepted handover that named the current owner, or None when none was named."""
    return session.execute(select(OwnerHandover).where(
        col(OwnerHandover.study_id) == study.id, col(OwnerHandover.status) == "accepted")
        .order_by(col(OwnerHandover.accepted_at).desc()).limit(1)).scalar_one_or_none()


def has_left(user: User | None, today: dt.date) -> bool:
    return user is None or not user.is_active or (
        user.end_date is not None and user.end_date < today)


def _check_incoming(session: Session, study: Study, username: str, today: dt.date) -> User:
    user = find_user(session, username.strip())
    if user is None or has_left(user, today):
        raise InvalidInput(_("to_username: no active account of that name"),
                           field="to_username", clause=CLAUSE)
    grants = session.execute(select(col(RoleGrant.role)).where(
        col(RoleGrant.user_id) == user.id,
        (col(RoleGrant.study) == study.code) | col(RoleGrant.study).is_(None))).scalars().all()
    if not any(g in OWNER_ROLES for g in grants):
        raise InvalidInput(_("to_username: the data owner must be a member of the study team"),
                           field="to_username", clause=CLAUSE)
    return user


def content_hash(study: Study, from_username: str | None, to_username: str,
                 reason: str) -> str:
    doc = {"study": study.code, "from": from_username, "to": to_username, "reason": reason}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
                          ).hexdigest()


def propose(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
            to_username: str, reason: str, username: str, password: str, totp: str | None,
            today: dt.date, config: AuthConfig = DEFAULT_CONFIG) -> OwnerHandover:
    """Propose (and sign) the handover of ``study_code``'s data ownership to ``to_username``;
    a pending proposal of the same study is withdrawn by it."""
    study = get_study(session, study_code)
    cur = current(session, study)
    outgoing = cur.to_username if cur is not None else None
    if outgoing is None:
        require(actor, Perm.STUDY_MANAGE, study=study.code)
    elif actor.username != outgoing:
        if not has_left(find_user(session, outgoing), today):
            raise PermissionDenied(
                _("only the data owner {outgoing} hands the study over").format(outgoing=outgoing),
                clause=CLAUSE)
        if not (actor.can(Perm.STUDY_MANAGE, study.code) or actor.can(Perm.ACCOUNT_MANAGE)):
            raise PermissionDenied(
                _("the owner has left: the study's manager or an administrator hands over"),
                                   clause=CLAUSE)
    reason = reason.strip()
    if not reason:
        raise InvalidInput(_("reason: required"), field="reason", clause=CLAUSE)
    incoming = _check_incoming(session, study, to_username, today)
    if incoming.username == outgoing:
        raise Conflict(_("to_username: {outgoing} is already the data owner").format(
                           outgoing=outgoing),
                       field="to_username", clause=CLAUSE)
    row = OwnerHandover(study_id=study.id, from_username=outgoing,
                        to_username=incoming.username, reason=reason,
                        proposed_by=actor.username, proposed_signature_id="")
    sig = signatures.sign(session, ledger, actor=actor, username=username, password=password,
                          totp=totp, meaning=PROPOSE_MEANING,
                          content_hash=content_hash(study, outgoing, incoming.username, reason),
                          entity_type="owner_handover", entity_id=row.id, study=study.code,
                          config=config)
    for old in session.execute(select(OwnerHandover).where(
            col(OwnerHandover.study_id) == study.id,
            col(OwnerHandover.status) == "pending")).scalars():
        old.status = "withdrawn"
    row.proposed_signature_id = sig.id
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.STUDY_OWNER_PROPOSE, entity_type="owner_handover",
                  entity_id=row.id, study=study.code, reason=reason,
                  changes=[Change("data_owner", outgoing, incoming.username),
                           Change("signature", None, sig.id)])
    return row


def accept(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
           handover_id: str, username: str, password: str, totp: str | None,
           config: AuthConfig = DEFAULT_CONFIG) -> OwnerHandover:
    """The incoming person accepts (and signs) a pending handover; it takes effect."""
    study = get_study(session, study_code)
    row = session.get(OwnerHandover, handover_id)
    if row is None or row.study_id != study.id:
        raise NotFound(_("no such handover"), field="handover_id")
    if row.status != "pending":
        raise Conflict(_("the handover is {status}").format(status=label(row.status)),
                       field="handover_id", clause=CLAUSE)
    if actor.username != row.to_username:
        raise PermissionDenied(_("only {to_username} accepts this handover").format(
                                   to_username=row.to_username),
                               clause=CLAUSE)
    cur = current(session, study)
    if (cur.to_username if cur is not None else None) != row.from_username:
        raise Conflict(_("the data owner changed since the proposal"),
                       field="handover_id", clause=CLAUSE)
    sig = signatures.sign(session, ledger, actor=actor, username=username, password=password,
                          totp=totp, meaning=ACCEPT_MEANING,
                          content_hash=content_hash(study, row.from_username, row.to_username,
                                                    row.reason),
                          entity_type="owner_handover", entity_id=row.id, study=study.code,
                          config=config)
    row.status, row.accepted_at, row.accepted_signature_id = "accepted", sig.signed_at, sig.id
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.STUDY_OWNER_ACCEPT, entity_type="owner_handover",
                  entity_id=row.id, study=study.code, reason=row.reason,
                  changes=[Change("data_owner", row.from_username, row.to_username),
                           Change("signature", None, sig.id)])
    return row


@dataclass(frozen=True)
class Tenure:
    handover: OwnerHandover
    proposed: str  # the signature lines
    accepted: str | None


@dataclass(frozen=True)
class OwnerView:
    owner: str | None
    since: dt.datetime | None
    pending: Tenure | None
    history: list[Tenure]  # accepted handovers, the latest first
    owner_left: bool


def _line(session: Session, sig_id: str | None) -> str | None:
    s = session.get(Signature, sig_id) if sig_id else None
    return signatures.view_of(s).line() if s is not None else None


def view(session: Session, *, actor: Actor, study_code: str, today: dt.date) -> OwnerView:
    """The current owner, the pending handover and the history (the study team and the
    administrator)."""
    if not (actor.can(Perm.STUDY_READ, study_code) or actor.can(Perm.ACCOUNT_MANAGE)):
        raise PermissionDenied(_("permission study.read is required"),
                               clause=CLAUSE)
    study = get_study(session, study_code)
    rows = session.execute(select(OwnerHandover).where(
        col(OwnerHandover.study_id) == study.id).order_by(
        col(OwnerHandover.created_at).desc())).scalars().all()

    def tenure(r: OwnerHandover) -> Tenure:
        return Tenure(r, _line(session, r.proposed_signature_id) or "",
                      _line(session, r.accepted_signature_id))

    history = sorted((tenure(r) for r in rows if r.status == "accepted"),
                     key=lambda t: t.handover.accepted_at or dt.datetime.min.replace(
                         tzinfo=dt.UTC), reverse=True)
    pending = next((tenure(r) for r in rows if r.status == "pending"), None)
    owner = history[0].handover.to_username if history else None
    return OwnerView(owner, history[0].handover.accepted_at if history else None, pending,
                     history, owner is not None and has_left(find_user(session, owner), today))


def studies_whose_owner_left(session: Session, *, actor: Actor,
                             today: dt.date) -> list[tuple[Study, str]]:
    """Studies whose data owner has left, for the administrator's handover list."""
    require(actor, Perm.ACCOUNT_MANAGE)
    out = []
    for study in session.execute(select(Study).order_by(col(Study.code))).scalars():
        cur = current(session, study)
        if cur is not None and has_left(find_user(session, cur.to_username), today):
            out.append((study, cur.to_username))
    return out
