"""Multi-party electronic sign-off (an unlock needs the PI, the data manager and the
statistician; a study unblinding the PI and the statistician) and the team inbox.

Each sign-off is an electronic signature (``studies.accounts.signatures``) recorded once per
role and once per person, so the signers are distinct people (§11.3.4.7 a, 21 CFR 11.50).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Ledger
from studies.accounts import signatures
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature
from studies.kernel.actor import Actor
from studies.kernel.errors import Conflict, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import Msg, _, render_stored
from studies.kernel.roles import ROLE_LABELS, UNLOCK_SIGNERS, Role
from studies.registry.models import Study
from studies.signoff.models import InboxMessage, SignOff

CLAUSE_SIGNOFF = "§11.3.4.7 a"


def notify(session: Session, *, study: Study | None, kind: str, text: str | Msg, by: str,
           audience: Collection[Role] | None = None, link: str | None = None) -> None:
    """A message in the team inbox of ``study``: for the holders of the ``audience`` roles
    on it (one row per role, all with the same time), or everyone with a role on it when
    ``audience`` is None; with no study, for the holders of the ``audience`` roles wherever
    they hold them. Each caller names the roles the message concerns. A :class:`Msg` is kept
    as such and shown in each reader's language."""
    stored = text.dumps() if isinstance(text, Msg) else text
    at = dt.datetime.now(dt.UTC)
    for role in (list(dict.fromkeys(audience)) if audience is not None else [None]):
        session.add(InboxMessage(study_id=study.id if study else None,
                                 study_code=study.code if study else None, kind=kind,
                                 text=stored[:4000], link=link, created_by=by, created_at=at,
                                 audience_role=role.value if role else None))
    session.flush()


@dataclass(frozen=True)
class InboxItem:
    study: str | None
    kind: str
    text: str
    link: str | None
    at: dt.datetime
    by: str


def inbox_for(session: Session, *, actor: Actor, limit: int = 20) -> list[InboxItem]:
    """The messages for ``actor``: those of the studies on which they hold a role (a role held
    for every study sees every study's), meant for everyone or for a role they hold there;
    once each (a message to two roles they hold is one item), newest first."""
    scopes = actor.scopes or tuple((r, s, None) for r, s in actor.grants)
    if not scopes:
        return []
    rows = session.execute(select(InboxMessage).order_by(
        col(InboxMessage.created_at).desc(), col(InboxMessage.id)).limit(1000)).scalars()
    out: list[InboxItem] = []
    seen: set[InboxItem] = set()
    for m in rows:
        if any((s is None or m.study_code is None or s == m.study_code)
               and (m.audience_role is None or r.value == m.audience_role)
               for r, s, _t in scopes):
            item = InboxItem(m.study_code, m.kind, render_stored(m.text), m.link, m.created_at,
                             m.created_by)
            if item in seen:
                continue
            seen.add(item)
            out.append(item)
            if len(out) >= limit:
                break
    return out


@dataclass(frozen=True)
class SignoffView:
    role: str
    line: str
    invalidated: bool = False


def signoffs(session: Session, entity_type: str, entity_id: str) -> list[SignoffView]:
    rows = session.execute(select(SignOff, Signature).join(
        Signature, col(Signature.id) == SignOff.signature_id).where(
        col(SignOff.entity_type) == entity_type, col(SignOff.entity_id) == entity_id)).all()
    order = {r.value: i for i, r in enumerate(UNLOCK_SIGNERS)}
    return sorted((SignoffView(so.role, signatures.view_of(sig).line()) for so, sig in rows),
                  key=lambda v: order.get(v.role, 9))


def holds_role(actor: Actor, role: Role, study_code: str) -> bool:
    scopes = actor.scopes or tuple((r, s, None) for r, s in actor.grants)
    return any(r == role and (s is None or s == study_code) for r, s, _t in scopes)


def signoff(session: Session, ledger: Ledger, *, actor: Actor, study: Study, entity_type: str,
            entity_id: str, content_hash: str, role: Role, roles: tuple[Role, ...],
            meaning: str, username: str, password: str, totp: str | None,
            config: AuthConfig) -> int:
    """One role's electronic sign-off of a thing; returns how many of ``roles`` have signed.
    Refused and audited: a role not asked for or not held on the study (403), a role signed
    already (409), a person who signed already in another role (403), a wrong password or
    second factor (401, audited by the signature mechanism)."""

    def audit(reason: str) -> dict[str, Any]:
        return dict(actor=actor.username,
                    action=Action(f"{entity_type}.sign"), entity_type=entity_type,
                    entity_id=entity_id, study=study.code, outcome="denied",
                    client=actor.client, reason=f"{reason}; as {role.value}"[:500])

    if role not in roles:
        raise PermissionDenied(
            _("role {value} does not sign this").format(value=role.value), field="role",
            clause=CLAUSE_SIGNOFF, audit=audit("role not among the signers"))
    if not holds_role(actor, role, study.code):
        raise PermissionDenied(
            _("you do not hold the role {value} on this study").format(value=ROLE_LABELS[role]),
            field="role", clause=CLAUSE_SIGNOFF, audit=audit("signer does not hold the role"))
    done = list(session.execute(select(SignOff).where(
        col(SignOff.entity_type) == entity_type, col(SignOff.entity_id) == entity_id)).scalars())
    if any(d.role == role.value for d in done):
        raise Conflict(_("{value} has already signed").format(value=ROLE_LABELS[role]),
                       field="role",
                       clause=CLAUSE_SIGNOFF, audit=audit("role already signed"))
    if any(d.user_id == actor.user_id for d in done):
        raise PermissionDenied(
            _("you have already signed this in another role; three different people must sign"),
                               field="role", clause=CLAUSE_SIGNOFF,
            audit=audit("repeated signer"))
    sig = signatures.sign(session, ledger, actor=actor, username=username, password=password,
                          totp=totp, meaning=meaning, content_hash=content_hash,
                          entity_type=entity_type, entity_id=entity_id, study=study.code,
                          config=config)
    session.add(SignOff(entity_type=entity_type, entity_id=entity_id, role=role.value,
                        user_id=actor.user_id, signature_id=sig.id))
    session.flush()
    return len(done) + 1
