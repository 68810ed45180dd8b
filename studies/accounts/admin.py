"""The system administrator's operations on accounts (§11.3.4.1, SPEC §9): list, grant and revoke
roles, unlock, reset a password or the second factor, (de)activate, end sessions. Every one
needs ``account.manage`` and is a ledger entry; the administrator sees no clinical data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Mapped, Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts import totp as totp_mod
from studies.accounts.config import AuthConfig, check_password_policy
from studies.accounts.models import RoleGrant, User, UserSession
from studies.accounts.service import (
    DEFAULT_CONFIG,
    check_grants,
    check_separation,
    find_user,
    grant_label,
    lock_state,
    roles_of,
    set_password,
)
from studies.kernel.actor import (
    SYSTEM,
    Actor,
    require,
)
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm, Role


def _target(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound(_("no account named {username!r}").format(username=username),
                       field="username")
    return user


def _admin(actor: Actor) -> None:
    if actor is not SYSTEM:
        require(actor, Perm.ACCOUNT_MANAGE)


@dataclass(frozen=True)
class AccountView:
    username: str
    display_name: str
    is_active: bool
    must_change_password: bool
    totp_enabled: bool
    roles: list[str]
    locked_until: dt.datetime | None
    open_sessions: int
    end_date: dt.date | None = None


def list_accounts(session: Session, *, actor: Actor,
                  config: AuthConfig = DEFAULT_CONFIG) -> list[AccountView]:
    _admin(actor)
    users = session.execute(select(User).order_by(col(User.username))).scalars().all()
    grants: dict[str, list[str]] = {}
    for uid, r, s, t, lv in session.execute(
            select(col(RoleGrant.user_id), col(RoleGrant.role), col(RoleGrant.study),
                   col(RoleGrant.site), col(RoleGrant.scope_level))):
        grants.setdefault(uid, []).append(grant_label(Role(r), s, t, lv))
    now = dt.datetime.now(dt.UTC)
    open_by: dict[str, int] = {}
    for uid, created, seen in session.execute(
            select(col(UserSession.user_id), col(UserSession.created_at),
                   col(UserSession.last_seen))
            .where(col(UserSession.ended_at).is_(None))):
        if now - seen <= config.idle_timeout and now - created <= config.session_lifetime:
            open_by[uid] = open_by.get(uid, 0) + 1
    return [AccountView(u.username, u.display_name, u.is_active, u.must_change_password,
                        u.totp_enabled, sorted(grants.get(u.id, [])),
                        lock_state(session, u.id, config, now).locked_until,
                        open_by.get(u.id, 0), u.end_date) for u in users]


def grant_role(session: Session, ledger: Ledger, *, actor: Actor, username: str, role: Role,
               study: str | None = None, site: str | None = None,
               level: str = "site") -> None:
    """Grant ``role`` for a study (None: every study), a site of it, or — ``level``
    ``department`` / ``hospital`` — every site in that site's department / hospital."""
    _admin(actor)
    user = _target(session, username)
    if user.id == actor.user_id:
        raise PermissionDenied(_("you cannot change your own roles"),
                               clause="§11.3.4.1 a")
    check_grants([(role, study, site, level)])
    check_separation(roles_of(session, user.id) | {role})
    exists = session.execute(select(col(RoleGrant.id)).where(
        col(RoleGrant.user_id) == user.id, col(RoleGrant.role) == role.value,
        _eq(col(RoleGrant.study), study), _eq(col(RoleGrant.site), site))).first()
    if exists:
        raise Conflict(_("this role is already granted"), field="role")
    session.add(RoleGrant(user_id=user.id, role=role.value, study=study, site=site,
                          scope_level=level))
    session.flush()
    ledger.append(session, actor=actor.username,
                  action=Action.ACCOUNT_ROLE_GRANT, entity_type="user",
                  entity_id=user.id, study=study, client=actor.client,
                  changes=[Change("role", None, grant_label(role, study, site, level))])


def revoke_role(session: Session, ledger: Ledger, *, actor: Actor, username: str, role: Role,
                study: str | None = None, site: str | None = None) -> None:
    _admin(actor)
    user = _target(session, username)
    grant = session.execute(select(RoleGrant).where(
        col(RoleGrant.user_id) == user.id, col(RoleGrant.role) == role.value,
        _eq(col(RoleGrant.study), study), _eq(col(RoleGrant.site), site))).scalar_one_or_none()
    if grant is None:
        raise NotFound(_("this role is not granted"), field="role")
    label = grant_label(role, study, site, grant.scope_level)
    session.delete(grant)
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_ROLE_REVOKE,
                  entity_type="user", entity_id=user.id, study=study, client=actor.client,
                  changes=[Change("role", label, None)])


def _eq(col: Mapped[str | None], value: str | None) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == value


def unlock(session: Session, ledger: Ledger, *, actor: Actor, username: str) -> None:
    _admin(actor)
    user = _target(session, username)
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_UNLOCK, entity_type="user",
                  entity_id=user.id, client=actor.client)


def reset_password(session: Session, ledger: Ledger, *, actor: Actor, username: str,
                   new_password: str, config: AuthConfig = DEFAULT_CONFIG) -> None:
    """An administrator sets a one-time password (handed over in person, after checking
    identity); the user must change it at the next login. Ends the user's sessions."""
    _admin(actor)
    user = _target(session, username)
    check_password_policy(new_password, user.username, config)
    set_password(session, user, new_password, field="password")
    user.must_change_password = True
    _end_sessions(session, user.id, "password_reset")
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_PASSWORD_RESET,
                  entity_type="user", entity_id=user.id, client=actor.client)


def reset_second_factor(session: Session, ledger: Ledger, *, actor: Actor,
                        username: str) -> None:
    """Clear a user's TOTP and recovery codes (lost phone); they enrol again at next login.
    Ends the user's sessions."""
    _admin(actor)
    user = _target(session, username)
    totp_mod.clear(session, user)
    _end_sessions(session, user.id, "second_factor_reset")
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_SECOND_FACTOR_RESET,
                  entity_type="user", entity_id=user.id, client=actor.client)


def set_active(session: Session, ledger: Ledger, *, actor: Actor, username: str,
               active: bool) -> None:
    _admin(actor)
    user = _target(session, username)
    if user.id == actor.user_id and not active:
        raise InvalidInput(_("you cannot deactivate your own account"),
                           field="username")
    user.is_active = active
    if not active:
        _end_sessions(session, user.id, "deactivated")
    ledger.append(session, actor=actor.username,
                  action=Action.ACCOUNT_ACTIVATE if active else Action.ACCOUNT_DEACTIVATE,
                  entity_type="user", entity_id=user.id, client=actor.client)


def parse_end_date(text: str | None) -> dt.date | None:
    """An end date typed as YYYY-MM-DD (empty: none); a bilingual 422 naming ``end_date``."""
    if text is None or not str(text).strip():
        return None
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidInput(_("end_date: a date as YYYY-MM-DD"),
                           field="end_date") from None


def set_end_date(session: Session, ledger: Ledger, *, actor: Actor, username: str,
                 end_date: dt.date | None) -> None:
    """Set (or clear, with None) the last day an account may be used (§11.3.2: people leave
    studies). After it the account cannot log in, and its sessions and API tokens stop working;
    a date already past ends its sessions now."""
    _admin(actor)
    user = _target(session, username)
    if user.id == actor.user_id and end_date is not None:
        raise InvalidInput(_("you cannot set an end date on your own account"), field="username")
    old = user.end_date
    user.end_date = end_date
    if end_date is not None and end_date < dt.datetime.now(dt.UTC).date():
        _end_sessions(session, user.id, "ended")
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_END_DATE,
                  entity_type="user", entity_id=user.id, client=actor.client,
                  changes=[Change("end_date", old.isoformat() if old else None,
                                  end_date.isoformat() if end_date else None)])


def _end_sessions(session: Session, user_id: str, reason: str) -> int:
    now = dt.datetime.now(dt.UTC)
    n = 0
    for us in session.execute(select(UserSession).where(
            col(UserSession.user_id) == user_id,
            col(UserSession.ended_at).is_(None))).scalars():
        us.ended_at, us.end_reason = now, reason
        n += 1
    session.flush()
    return n


def revoke_sessions(session: Session, ledger: Ledger, *, actor: Actor, username: str) -> int:
    """End every open session of a user at once (administrator); returns how many."""
    _admin(actor)
    user = _target(session, username)
    n = _end_sessions(session, user.id, "revoked")
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_SESSIONS_REVOKE,
                  entity_type="user", entity_id=user.id, client=actor.client,
                  reason=f"{n} session(s) ended")
    return n
