"""API tokens for machine clients (e.g. a sponsor's script): ``Authorization: Bearer <token>``.

A token acts for one user in ONE role (and study) that the user holds, expires (at most
``api_token_max_days``), can be revoked, and is stored only as its SHA-256. It never carries a
privileged role (those need the second factor). Every use is a ledger entry.

A token is issued in one of two shapes: ``edc_…`` (the JSON API's bearer token), or REDCap's
(32 upper-case hexadecimal characters, which PyCap, REDCapR and redcapAPI require) for the
REDCap-compatible endpoint ``POST /api/``. Both authenticate the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts.config import AuthConfig
from studies.accounts.models import ApiToken, RoleGrant, User
from studies.accounts.service import DEFAULT_CONFIG, account_ended, scope_triples_of
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import PRIVILEGED, Perm, Role, permissions_of

PREFIX = "edc_"
REDCAP_LENGTH = 32


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    id: str
    token: str  # shown once
    expires_at: dt.datetime


def create_token(session: Session, ledger: Ledger, *, actor: Actor, name: str, role: Role,
                 study: str | None, days: int,
                 config: AuthConfig = DEFAULT_CONFIG, redcap: bool = False) -> IssuedToken:
    """A user issues a token for themselves, for a role they hold (for that study).
    ``redcap``: in REDCap's shape (32 hexadecimal characters), for ``POST /api/``; such a
    token names one study, as a REDCap token names one project."""
    if actor.pending or actor.token_id:
        raise PermissionDenied(_("tokens are issued from an interactive session"))
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput(_("name: 1–100 characters"), field="name")
    if not 1 <= days <= config.api_token_max_days:
        raise InvalidInput(_("days: 1–{api_token_max_days}").format(
                               api_token_max_days=config.api_token_max_days), field="days")
    if role in PRIVILEGED:
        raise InvalidInput(_("privileged roles cannot use API tokens (they need the second "
                             "factor)"), field="role")
    held = any(r == role and (s is None or s == study) for r, s in actor.grants)
    if not held:
        raise PermissionDenied(_("you do not hold this role for this study"),
                               clause="§11.3.4.1 a")
    if redcap and study is None:
        raise InvalidInput(_("study: a REDCap token is for one study"),
                           field="study")
    token = (secrets.token_hex(REDCAP_LENGTH // 2).upper() if redcap
             else PREFIX + secrets.token_urlsafe(32))
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    row = ApiToken(user_id=actor.user_id, name=name, token_hash=_hash(token), role=role.value,
                   study=study, created_by=actor.username, expires_at=expires)
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username,
                  action=Action.TOKEN_CREATE, entity_type="api_token",
                  entity_id=row.id, study=study, client=actor.client,
                  changes=[Change("name", None, name), Change("role", None, role.value),
                           Change("expires_at", None, expires.isoformat())]
                  + ([Change("shape", None, "redcap")] if redcap else []))
    return IssuedToken(row.id, token, expires)


@dataclass(frozen=True)
class TokenView:
    id: str
    username: str
    name: str
    role: str
    study: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


def list_tokens(session: Session, *, actor: Actor, all_users: bool = False) -> list[TokenView]:
    stmt = select(ApiToken, col(User.username)).join(User, col(User.id) == ApiToken.user_id)
    if all_users:
        require(actor, Perm.ACCOUNT_MANAGE)
    else:
        stmt = stmt.where(col(ApiToken.user_id) == actor.user_id)
    rows = session.execute(stmt.order_by(col(ApiToken.created_at).desc())).all()
    return [TokenView(t.id, u, t.name, t.role, t.study, t.created_at, t.expires_at,
                      t.revoked_at, t.last_used_at) for t, u in rows]


def revoke_token(session: Session, ledger: Ledger, *, actor: Actor, token_id: str) -> None:
    """The owner or an administrator revokes a token."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(_("no such token"), field="token_id")
    if row.user_id != actor.user_id:
        require(actor, Perm.ACCOUNT_MANAGE)
    if row.revoked_at is None:
        row.revoked_at = dt.datetime.now(dt.UTC)
    ledger.append(session, actor=actor.username,
                  action=Action.TOKEN_REVOKE, entity_type="api_token",
                  entity_id=row.id, study=row.study, client=actor.client)


def authenticate(session: Session, ledger: Ledger, *, token: str, client: str | None,
                 method: str, path: str, now: dt.datetime | None = None) -> Actor:
    """The actor of a bearer token: the token's one role (if the user still holds it). Every
    use is audited (``token.use``); an unknown, expired or revoked token is refused and
    audited."""
    now = now or dt.datetime.now(dt.UTC)
    row = session.execute(select(ApiToken).where(
        col(ApiToken.token_hash) == _hash(token))).scalar_one_or_none()
    user = session.get(User, row.user_id) if row is not None else None
    problem = None
    if row is None or user is None:
        problem = "unknown"
    elif row.revoked_at is not None:
        problem = "revoked"
    elif now >= row.expires_at:
        problem = "expired"
    elif not user.is_active:
        problem = "inactive"
    elif account_ended(user, now):
        problem = "account ended"
    if problem:
        raise NotAuthenticated(
            _("the API token is not valid (unknown, expired or revoked)"),
            audit=dict(actor=user.username if user else "(token)", action=Action.TOKEN_USE,
                       entity_type="api_token", entity_id=row.id if row else "(unknown)",
                       outcome="failure", client=client, reason=problem))
    assert row is not None and user is not None
    role = Role(row.role)
    held = session.execute(select(col(RoleGrant.role), col(RoleGrant.study),
                                  col(RoleGrant.site), col(RoleGrant.scope_level)).where(
        col(RoleGrant.user_id) == user.id, col(RoleGrant.role) == role.value)).all()
    scopes = tuple((r, s, t) for r, s, t in scope_triples_of(session, held)
                   if row.study is None or s is None or s == row.study)
    scopes = tuple((r, row.study or s, t) for r, s, t in scopes)
    row.last_used_at = now
    ledger.append(session, actor=user.username, action=Action.TOKEN_USE, entity_type="api_token",
                  entity_id=row.id, study=row.study, client=client,
                  reason=f"{method} {path}"[:500])
    grants = tuple(dict.fromkeys((r, s) for r, s, _x in scopes))
    return Actor(user_id=user.id, username=user.username, display_name=user.display_name,
                 grants=grants, client=client, scopes=scopes, token_id=row.id,
                 perms=permissions_of({r for r, _x in grants}))
