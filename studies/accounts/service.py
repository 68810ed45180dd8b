"""Accounts: creation, password hashing (Argon2id), login and server-side sessions.

Every login (success and failure), logout and timeout is a ledger entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.pwhash
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.service import Change, Ledger
from studies.accounts.models import RoleGrant, User, UserSession
from studies.accounts.roles import Perm, Role, permissions_of
from studies.errors import Conflict, InvalidInput, NotAuthenticated, PermissionDenied

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 256


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user, the roles they hold (by study), and where they connect from."""

    user_id: str
    username: str
    display_name: str
    grants: tuple[tuple[Role, str | None], ...]
    client: str | None = None
    session_id: str | None = None
    must_change_password: bool = False
    perms: frozenset[Perm] = field(default=frozenset())

    @property
    def roles(self) -> set[Role]:
        return {r for r, _ in self.grants}

    def can(self, perm: Perm, study: str | None = None) -> bool:
        roles = {r for r, s in self.grants if s is None or study is None or s == study}
        return perm in permissions_of(roles)


SYSTEM = Actor(user_id="system", username="system", display_name="System", grants=())


def require(actor: Actor, perm: Perm, *, study: str | None = None) -> None:
    if not actor.can(perm, study):
        raise PermissionDenied(
            f"permission {perm.value} is required / 需要权限 {perm.value}", clause="§11.3.4.1 a")


def hash_password(password: str) -> str:
    return nacl.pwhash.argon2id.str(password.encode()).decode()


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(stored.encode(), password.encode()))
    except nacl.exceptions.InvalidkeyError:
        return False


def check_password_policy(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"password must have at least {MIN_PASSWORD} characters / 密码至少 {MIN_PASSWORD} 位",
            field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password is longer than {MAX_PASSWORD} characters", field="password")
    if password.lower() == username.lower():
        raise InvalidInput("password must not equal the username / 密码不能与用户名相同",
                           field="password")


def create_user(
    session: Session, ledger: Ledger, *, actor: Actor, username: str, display_name: str,
    password: str, roles: list[tuple[Role, str | None]], must_change_password: bool = True,
) -> User:
    """Create an account with its role grants; audited. Refuses a duplicate username."""
    if actor is not SYSTEM:
        require(actor, Perm.ACCOUNT_MANAGE)
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "username: 2–63 lower-case letters, digits, '.', '_' or '-' / 用户名格式不正确",
            field="username")
    if not display_name.strip() or len(display_name) > 200:
        raise InvalidInput("display name is required (≤200 characters) / 需填写姓名",
                           field="display_name")
    check_password_policy(password, username)
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"username {username!r} is taken / 用户名已存在", field="username")
    user = User(username=username, display_name=display_name.strip(),
                password_hash=hash_password(password), must_change_password=must_change_password)
    session.add(user)
    session.flush()
    for role, study in roles:
        session.add(RoleGrant(user_id=user.id, role=role.value, study=study))
    session.flush()
    ledger.append(
        session, actor=actor.username, action="account.create", entity_type="user",
        entity_id=user.id, client=actor.client,
        changes=[Change("username", None, username),
                 Change("roles", None, sorted(f"{r.value}@{s or '*'}" for r, s in roles))],
    )
    return user


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(session: Session, user: User, *, client: str | None,
              session_id: str | None = None) -> Actor:
    grants = session.execute(
        select(RoleGrant.role, RoleGrant.study).where(RoleGrant.user_id == user.id)
    ).all()
    g = tuple((Role(r), s) for r, s in grants)
    return Actor(user_id=user.id, username=user.username, display_name=user.display_name,
                 grants=g, client=client, session_id=session_id,
                 must_change_password=user.must_change_password,
                 perms=permissions_of({r for r, _ in g}))


def login(session: Session, ledger: Ledger, *, username: str, password: str,
          client: str | None) -> tuple[str, Actor]:
    """Check the password and open a server-side session; returns (token, actor).

    A failure is audited and answered with one message whatever the cause, so that it does not
    reveal which usernames exist.
    """
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    ok = False
    if user is not None and user.is_active:
        ok = _verify(user.password_hash, password)
    if not ok:
        raise NotAuthenticated(
            "wrong username or password / 用户名或密码错误",
            audit=dict(actor=username[:200] or "(empty)", action="auth.login",
                       entity_type="user", entity_id=user.id if user else "(unknown)",
                       outcome="failure", client=client))
    assert user is not None
    token = secrets.token_urlsafe(32)
    sid = _token_id(token)
    session.add(UserSession(id=sid, user_id=user.id))
    session.flush()
    ledger.append(session, actor=user.username, action="auth.login", entity_type="user",
                  entity_id=user.id, client=client)
    return token, actor_for(session, user, client=client, session_id=sid)


def resolve_session(session: Session, *, token: str, client: str | None,
                    idle_timeout: dt.timedelta, lifetime: dt.timedelta,
                    now: dt.datetime | None = None) -> Actor:
    """The actor behind a session token; ends (and audits) an idle or expired session."""
    now = now or dt.datetime.now(dt.UTC)
    us = session.get(UserSession, _token_id(token))
    if us is None or us.ended_at is not None:
        raise NotAuthenticated("please log in / 请登录")
    reason = None
    if now - us.last_seen > idle_timeout:
        reason = "idle_timeout"
    elif now - us.created_at > lifetime:
        reason = "lifetime"
    user = session.get(User, us.user_id)
    if reason or user is None or not user.is_active:
        # The request's transaction rolls back with this error; the web layer records the
        # ledger entry in its own transaction, and the stale row stays refused by the checks
        # above on every later use.
        raise NotAuthenticated(
            "your session has ended; please log in again / 会话已超时，请重新登录",
            audit=dict(actor=user.username if user else "(unknown)", action="auth.timeout",
                       entity_type="session", entity_id=us.id[:16],
                       reason=reason or "inactive", client=client))
    us.last_seen = now
    return actor_for(session, user, client=client, session_id=us.id)


def logout(session: Session, ledger: Ledger, *, actor: Actor) -> None:
    if actor.session_id:
        us = session.get(UserSession, actor.session_id)
        if us is not None and us.ended_at is None:
            us.ended_at, us.end_reason = dt.datetime.now(dt.UTC), "logout"
    ledger.append(session, actor=actor.username, action="auth.logout", entity_type="user",
                  entity_id=actor.user_id, client=actor.client)


def change_password(session: Session, ledger: Ledger, *, actor: Actor, current: str,
                    new: str) -> None:
    user = session.get(User, actor.user_id)
    if user is None or not _verify(user.password_hash, current):
        raise InvalidInput(
            "current password is wrong / 当前密码错误", field="current_password",
            audit=dict(actor=actor.username, action="account.password_change",
                       entity_type="user", entity_id=actor.user_id, outcome="failure",
                       client=actor.client))
    check_password_policy(new, user.username)
    if new == current:
        raise InvalidInput("the new password must differ / 新密码不能与旧密码相同",
                           field="new_password")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    ledger.append(session, actor=actor.username, action="account.password_change",
                  entity_type="user", entity_id=actor.user_id, client=actor.client)


def find_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


__all__ = ["Actor", "SYSTEM", "PermissionDenied", "require"]
