"""Accounts: creation, password policy and hashing (Argon2id), login with lockout, rate limit
and second factor, server-side sessions, and the administrator's operations.

Every login (success and failure), logout, timeout, lockout, password change and account
change is a ledger entry. Refusals raise a ``DomainError`` whose ``audit`` the web layer writes
in a transaction of its own (the request's rolls back). Lockout is computed from those ledger
entries, so it holds across restarts and processes and cannot be cleared by a rollback.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.base import execute_core
from audit_trail.models import LedgerEntry
from audit_trail.service import Change, Ledger, canonical_ts
from studies.accounts import totp as totp_mod
from studies.accounts.config import PASSWORD_HISTORY, AuthConfig, check_password_policy
from studies.accounts.models import (
    SCOPE_LEVELS,
    PasswordHistory,
    RoleGrant,
    User,
    UserSession,
)
from studies.accounts.ratelimit import LoginLimiter
from studies.kernel.actor import (
    PENDING_PASSWORD,
    PENDING_SECOND_FACTOR,
    SYSTEM,
    Actor,
    require,
)
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    Locked,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
)
from studies.kernel.events import Action
from studies.kernel.i18n import _, _l
from studies.kernel.roles import PRIVILEGED, Perm, Role, permissions_of
from studies.registry.models import Site, Study

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
SITE_RE = re.compile(r"^[A-Za-z0-9_-]{1,10}$")
STUDY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEFAULT_CONFIG = AuthConfig()

def hash_password(password: str) -> str:
    return nacl.pwhash.argon2id.str(password.encode()).decode()


def verify_password(stored: str, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(stored.encode(), password.encode()))
    except nacl.exceptions.InvalidkeyError:
        return False


_verify = verify_password
_DUMMY_HASH: list[str] = []


def _dummy_verify(password: str) -> None:
    """Spend the time of a real check for an unknown user (no username oracle by timing)."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_hex(16)))
    verify_password(_DUMMY_HASH[0], password)


def _check_username(username: str) -> None:
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            _("username: 2–63 lower-case letters, digits, '.', '_' or '-'"),
            field="username")


def grant_parts(g: Any) -> tuple[Role, str | None, str | None, str]:
    """(role, study, site, scope level) of a grant given as (role, study[, site[, level]])."""
    site = g[2] if len(g) > 2 else None
    level = g[3] if len(g) > 3 and g[3] else "site"
    return Role(g[0]), g[1], site, level


def check_grants(roles: list[Any]) -> None:
    for g in roles:
        _role, study, site, level = grant_parts(g)
        if study is not None and not STUDY_RE.match(study):
            raise InvalidInput(_("study: letters, digits, '.', '_' or '-'"),
                               field="study")
        if level not in SCOPE_LEVELS:
            raise InvalidInput(_("scope_level: one of {SCOPE_LEVELS}").format(
                                   SCOPE_LEVELS=', '.join(SCOPE_LEVELS)), field="scope_level")
        if site is not None:
            if study is None:
                raise InvalidInput(_("a site scope needs a study"),
                                   field="site")
            if not SITE_RE.match(site):
                raise InvalidInput(_("site: up to 10 letters or digits"),
                                   field="site")
        elif level != "site":
            raise InvalidInput(_("a department or hospital scope names one of its sites"),
                               field="site")


def check_separation(roles: set[Role]) -> None:
    """The system administrator's account holds no other role: it manages accounts but never
    reads clinical data, the code index or the audit trail (separation of duties)."""
    if Role.ADMIN in roles and len(roles) > 1:
        raise InvalidInput(
            _("the administrator role cannot be combined with other roles on one account "
              "(separation of duties)"), field="role",
            clause="§11.3.4.1 a")


def create_user(
    session: Session, ledger: Ledger, *, actor: Actor, username: str, display_name: str,
    password: str, roles: list[Any], must_change_password: bool = True,
    config: AuthConfig = DEFAULT_CONFIG,
) -> User:
    """Create an account with its role grants ((role, study) or (role, study, site)); audited.
    Refuses a duplicate username."""
    if actor is not SYSTEM:
        require(actor, Perm.ACCOUNT_MANAGE)
    _check_username(username)
    if not display_name.strip() or len(display_name) > 200:
        raise InvalidInput(_("display name is required (≤200 characters)"),
                           field="display_name")
    check_password_policy(password, username, config)
    check_grants(roles)
    check_separation({Role(g[0]) for g in roles})
    if session.execute(select(col(User.id)).where(col(User.username) == username)).first():
        raise Conflict(_("username {username!r} is taken").format(username=username),
                       field="username")
    user = User(username=username, display_name=display_name.strip(),
                password_hash=hash_password(password), must_change_password=must_change_password,
                password_changed_at=dt.datetime.now(dt.UTC))
    session.add(user)
    session.flush()
    labels = []
    for g in roles:
        role, study, site, level = grant_parts(g)
        session.add(RoleGrant(user_id=user.id, role=role.value, study=study, site=site,
                              scope_level=level))
        labels.append(grant_label(role, study, site, level))
    session.flush()
    ledger.append(
        session, actor=actor.username, action=Action.ACCOUNT_CREATE, entity_type="user",
        entity_id=user.id, client=actor.client,
        changes=[Change("username", None, username), Change("roles", None, sorted(labels))],
    )
    return user


def grant_label(role: Role, study: str | None, site: str | None, level: str = "site") -> str:
    return (f"{role.value}@{study or '*'}" + (f"/{site}" if site else "")
            + (f" ({level})" if level != "site" else ""))


def scope_triples_of(session: Session, rows: Any) -> tuple[tuple[Role, str | None,
                                                                 str | None], ...]:
    """The (role, study, site) scopes of grants given as (role, study, site, level) rows: a
    department or hospital grant names one site and reaches every site of its study in the
    same hospital (and department), as the sites are registered now. A grant naming a site
    that does not exist reaches only that site code."""
    out: list[tuple[Role, str | None, str | None]] = []
    for r, study, site, level in rows:
        role = Role(r)
        anchor = None
        if site is not None and study is not None and level != "site":
            anchor = session.execute(
                select(Site).join(Study, col(Study.id) == Site.study_id)
                .where(col(Study.code) == study, col(Site.code) == site)).scalar_one_or_none()
        if anchor is None:
            out.append((role, study, site))
            continue
        q = select(col(Site.code)).where(col(Site.study_id) == anchor.study_id,
                                          col(Site.hospital) == anchor.hospital)
        if level == "department":
            q = q.where(col(Site.department).is_(None) if anchor.department is None
                        else col(Site.department) == anchor.department)
        out.extend((role, study, code) for code in session.execute(q).scalars())
    return tuple(dict.fromkeys(out))


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(session: Session, user: User, *, client: str | None,
              session_id: str | None = None, second_factor: bool = False,
              config: AuthConfig | None = None, now: dt.datetime | None = None) -> Actor:
    rows = session.execute(
        select(col(RoleGrant.role), col(RoleGrant.study), col(RoleGrant.site),
               col(RoleGrant.scope_level))
        .where(col(RoleGrant.user_id) == user.id)
    ).all()
    return _actor(session, user_id=user.id, username=user.username,
                  display_name=user.display_name, must_change_password=user.must_change_password,
                  password_changed_at=user.password_changed_at, grant_rows=rows, client=client,
                  session_id=session_id, second_factor=second_factor, config=config, now=now)


def _actor(session: Session, *, user_id: str, username: str, display_name: str,
           must_change_password: bool, password_changed_at: dt.datetime | None,
           grant_rows: Any, client: str | None, session_id: str | None, second_factor: bool,
           config: AuthConfig | None, now: dt.datetime | None) -> Actor:
    """The actor of a user whose grants are ``grant_rows`` (role, study, site, level)."""
    scopes = scope_triples_of(session, grant_rows)
    grants = tuple(dict.fromkeys((r, s) for r, s, _x in scopes))
    must_change = must_change_password or _password_expired_at(password_changed_at, config, now)
    pending = None
    if must_change:
        pending = PENDING_PASSWORD
    elif (config is not None and config.second_factor_enforced and not second_factor
          and {r for r, _x, _x in scopes} & PRIVILEGED):
        pending = PENDING_SECOND_FACTOR
    return Actor(user_id=user_id, username=username, display_name=display_name,
                 grants=grants, client=client, session_id=session_id,
                 must_change_password=must_change, perms=permissions_of({r for r, _x in grants}),
                 scopes=scopes, pending=pending, second_factor=second_factor)


def _password_expired(user: User, config: AuthConfig | None, now: dt.datetime | None) -> bool:
    return _password_expired_at(user.password_changed_at, config, now)


def _password_expired_at(changed_at: dt.datetime | None, config: AuthConfig | None,
                         now: dt.datetime | None) -> bool:
    if config is None or not config.password_max_age_days or changed_at is None:
        return False
    now = now or dt.datetime.now(dt.UTC)
    return now - changed_at > dt.timedelta(days=config.password_max_age_days)


# --- lockout, from the ledger --------------------------------------------------------------

COUNTED_FAILURES = ("password", "second_factor")


@dataclass(frozen=True)
class LockState:
    locked_until: dt.datetime | None
    recent_failures: int


def lock_state(session: Session, user_id: str, config: AuthConfig,
               now: dt.datetime | None = None) -> LockState:
    """Whether the account is locked, and how many counted failures the window holds.

    Reads the account's ``auth.login``, ``auth.lockout`` and ``account.unlock`` ledger entries:
    a success or an unlock resets the count; a lockout lasts ``lockout_duration`` unless an
    administrator unlocks earlier.
    """
    now = now or dt.datetime.now(dt.UTC)
    since = now - max(config.lockout_window, config.lockout_duration)
    rows = session.execute(
        select(col(LedgerEntry.action), col(LedgerEntry.outcome), col(LedgerEntry.reason),
               col(LedgerEntry.ts))
        .where(col(LedgerEntry.entity_type) == "user", col(LedgerEntry.entity_id) == user_id,
               col(LedgerEntry.action).in_(
                   (Action.AUTH_LOGIN, Action.AUTH_LOCKOUT, Action.ACCOUNT_UNLOCK)),
               col(LedgerEntry.ts) >= canonical_ts(since))
        .order_by(col(LedgerEntry.seq).desc())
    ).all()
    failures = 0
    window_start = canonical_ts(now - config.lockout_window)
    for action, outcome, reason, ts in rows:  # newest first
        if action == Action.ACCOUNT_UNLOCK or (
                action == Action.AUTH_LOGIN and outcome == "success"):
            break
        if action == Action.AUTH_LOCKOUT:
            until = _parse_ts(ts) + config.lockout_duration
            if until > now:
                return LockState(until, failures)
            break
        if outcome == "failure" and reason in COUNTED_FAILURES and ts >= window_start:
            failures += 1
    return LockState(None, failures)


def _parse_ts(ts: str) -> dt.datetime:
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def _failure(user: User | None, username: str, client: str | None, reason: str,
             message: str, config: AuthConfig, session: Session,
             *, field: str | None = None, now: dt.datetime | None = None) -> NotAuthenticated:
    """The refusal of a login, with its ledger entries (and a lockout entry at the threshold)."""
    entries: list[dict[str, Any]] = [dict(
        actor=username[:200] or "(empty)", action=Action.AUTH_LOGIN, entity_type="user",
        entity_id=user.id if user else "(unknown)", outcome="failure", client=client,
        reason=reason)]
    if user is not None and reason in COUNTED_FAILURES:
        state = lock_state(session, user.id, config, now)
        if state.recent_failures + 1 >= config.lockout_threshold:
            entries.append(dict(
                actor="system", action=Action.AUTH_LOCKOUT, entity_type="user", entity_id=user.id,
                outcome="success", client=client,
                reason=f"{state.recent_failures + 1} failed logins within "
                       f"{int(config.lockout_window.total_seconds() // 60)} minutes"))
    return NotAuthenticated(message, field=field, audit=entries)  # type: ignore[arg-type]


WRONG = _l("wrong username or password")


def login(session: Session, ledger: Ledger, *, username: str, password: str,
          client: str | None, totp: str | None = None, config: AuthConfig = DEFAULT_CONFIG,
          limiter: LoginLimiter | None = None,
          now: dt.datetime | None = None) -> tuple[str, Actor]:
    """Check the password (and the second factor where required) and open a server-side
    session; returns (token, actor).

    A wrong username or password gets one message whatever the cause, so that it does not
    reveal which usernames exist. Refusals are audited; 5 counted failures in 15 minutes lock
    the account (the defaults).
    """
    if limiter is not None:
        wait = limiter.check(account=username, client=client)
        if wait is not None:
            raise TooManyRequests(
                _("too many login attempts; wait a minute and try again"),
                                  retry_after=int(wait) + 1,
                audit=dict(actor=username[:200] or "(empty)", action=Action.AUTH_LOGIN,
                           entity_type="user", entity_id="(rate limited)", outcome="denied",
                           client=client, reason="rate_limited"))
    user = session.execute(select(User).where(col(User.username) == username)).scalar_one_or_none()
    if user is None or not user.is_active or account_ended(user, now):
        _dummy_verify(password)
        raise _failure(user, username, client, "unknown_or_inactive", str(WRONG), config, session)
    state = lock_state(session, user.id, config, now)
    if state.locked_until is not None:
        raise Locked(
            _("this account is locked after repeated failed logins; try again later or ask an "
              "administrator"),
            audit=dict(actor=username, action=Action.AUTH_LOGIN, entity_type="user",
                       entity_id=user.id, outcome="failure", client=client, reason="locked"))
    if not verify_password(user.password_hash, password):
        raise _failure(user, username, client, "password", str(WRONG), config, session, now=now)
    holds_privileged = bool(roles_of(session, user.id) & PRIVILEGED)
    inside = config.inside_hospital(client)
    need_second = config.second_factor_enforced and (holds_privileged or not inside)
    second_factor = False
    if need_second and user.totp_enabled:
        if not totp or not totp.strip():
            raise NotAuthenticated(
                _("enter the code from your authenticator app (or a recovery code)"), field="totp",
                audit=dict(actor=username, action=Action.AUTH_LOGIN, entity_type="user",
                           entity_id=user.id, outcome="failure", client=client,
                           reason="second_factor_missing"))
        if not totp_mod.check_code(session, user, totp, config=config, now=now):
            raise _failure(user, username, client, "second_factor",
                           _("wrong second-factor code"), config, session,
                           field="totp", now=now)
        second_factor = True
    elif need_second and not inside:
        raise NotAuthenticated(
            _("logins from outside the hospital network need a second factor; enrol one from "
              "inside the hospital first"),
            field="totp",
            audit=dict(actor=username, action=Action.AUTH_LOGIN, entity_type="user",
                       entity_id=user.id, outcome="failure", client=client,
                       reason="second_factor_not_enrolled_outside"))
    elif user.totp_enabled and totp and totp.strip():
        # not required here, but offered: a wrong code is still a failed login
        if not totp_mod.check_code(session, user, totp, config=config, now=now):
            raise _failure(user, username, client, "second_factor",
                           _("wrong second-factor code"), config, session,
                           field="totp", now=now)
        second_factor = True
    token = secrets.token_urlsafe(32)
    sid = _token_id(token)
    session.add(UserSession(id=sid, user_id=user.id, second_factor=second_factor))
    session.flush()
    ledger.append(session, actor=user.username, action=Action.AUTH_LOGIN, entity_type="user",
                  entity_id=user.id, client=client,
                  reason="password+totp" if second_factor else "password")
    return token, actor_for(session, user, client=client, session_id=sid,
                            second_factor=second_factor, config=config, now=now)


def roles_of(session: Session, user_id: str) -> set[Role]:
    return {Role(r) for r in session.execute(
        select(col(RoleGrant.role)).where(col(RoleGrant.user_id) == user_id)).scalars()}


_SESSION_ACTOR = (
    select(col(UserSession.user_id), col(UserSession.last_seen), col(UserSession.created_at),
           col(UserSession.ended_at), col(UserSession.second_factor), col(User.username),
           col(User.display_name), col(User.must_change_password), col(User.is_active),
           col(User.password_changed_at), col(User.end_date), col(RoleGrant.role),
           col(RoleGrant.study), col(RoleGrant.site), col(RoleGrant.scope_level))
    .join(User, col(User.id) == col(UserSession.user_id))
    .outerjoin(RoleGrant, col(RoleGrant.user_id) == col(User.id))
    .where(col(UserSession.id) == bindparam("sid")))


def resolve_session(session: Session, *, token: str, client: str | None,
                    idle_timeout: dt.timedelta | None = None,
                    lifetime: dt.timedelta | None = None,
                    now: dt.datetime | None = None,
                    config: AuthConfig | None = None,
                    defer_refresh: Callable[[str, dt.datetime], None] | None = None) -> Actor:
    """The actor behind a session token; ends (and audits) an idle or expired session.

    The session's last use (which the idle timeout counts from) is written only when it is
    ``config.session_refresh`` old or older, so most requests write nothing. ``defer_refresh``:
    instead of writing it in this transaction, call it with the session id and the time, for
    the caller to write with ``refresh_session`` in a transaction of its own (a request served
    as a reader)."""
    now = now or dt.datetime.now(dt.UTC)
    idle_timeout = idle_timeout or (config.idle_timeout if config else dt.timedelta(minutes=10))
    lifetime = lifetime or (config.session_lifetime if config else dt.timedelta(hours=12))
    sid = _token_id(token)
    # Every request: the session, its account and the account's grants in one query of
    # columns (no ORM objects), read from the database each time — nothing is cached, so an
    # ended session, a deactivated account or a revoked grant stops working at once, in
    # every process. A session that is not plainly valid takes the path below, which
    # refuses it exactly as before.
    rows = execute_core(session, _SESSION_ACTOR, {"sid": sid}).all()
    first = rows[0] if rows else None
    if (first is not None and first.ended_at is None and first.is_active
            and now - first.last_seen <= idle_timeout and now - first.created_at <= lifetime
            and not _ended_on(first.end_date, now)):
        refresh = config.session_refresh if config else dt.timedelta(0)
        if now - first.last_seen >= refresh:
            if defer_refresh is None:
                us_row = session.get(UserSession, sid)
                assert us_row is not None
                us_row.last_seen = now
            else:
                defer_refresh(sid, now)
        return _actor(session, user_id=first.user_id, username=first.username,
                      display_name=first.display_name,
                      must_change_password=first.must_change_password,
                      password_changed_at=first.password_changed_at,
                      grant_rows=[(r.role, r.study, r.site, r.scope_level) for r in rows
                                  if r.role is not None],
                      client=client, session_id=sid, second_factor=first.second_factor,
                      config=config, now=now)
    us = session.get(UserSession, sid)
    if us is None or us.ended_at is not None:
        raise NotAuthenticated(_("please log in"))
    reason = None
    if now - us.last_seen > idle_timeout:
        reason = "idle_timeout"
    elif now - us.created_at > lifetime:
        reason = "lifetime"
    user = session.get(User, us.user_id)
    if user is not None and not reason and account_ended(user, now):
        reason = "ended"
    if reason or user is None or not user.is_active:
        # The request's transaction rolls back with this error; the web layer records the
        # ledger entry in its own transaction, and the stale row stays refused by the checks
        # above on every later use.
        raise NotAuthenticated(
            _("your session has ended; please log in again"),
            audit=dict(actor=user.username if user else "(unknown)", action=Action.AUTH_TIMEOUT,
                       entity_type="session", entity_id=us.id[:16],
                       reason=reason or "inactive", client=client))
    refresh = config.session_refresh if config else dt.timedelta(0)
    if now - us.last_seen >= refresh:
        if defer_refresh is None:
            us.last_seen = now
        else:
            defer_refresh(us.id, now)
    return actor_for(session, user, client=client, session_id=us.id,
                     second_factor=us.second_factor, config=config, now=now)


_REFRESH = (update(UserSession)
            .where(col(UserSession.id) == bindparam("sid"), col(UserSession.ended_at).is_(None),
                   col(UserSession.last_seen) < bindparam("now"))
            .values(last_seen=bindparam("now")))


def refresh_session(session: Session, session_id: str, now: dt.datetime) -> None:
    """Write a session's last use (``resolve_session(defer_refresh=…)``); a session ended or
    used later meanwhile is left as it is."""
    session.execute(_REFRESH, {"sid": session_id, "now": now})


def logout(session: Session, ledger: Ledger, *, actor: Actor) -> None:
    if actor.session_id:
        us = session.get(UserSession, actor.session_id)
        if us is not None and us.ended_at is None:
            us.ended_at, us.end_reason = dt.datetime.now(dt.UTC), "logout"
    ledger.append(session, actor=actor.username, action=Action.AUTH_LOGOUT, entity_type="user",
                  entity_id=actor.user_id, client=actor.client)


def change_password(session: Session, ledger: Ledger, *, actor: Actor, current: str,
                    new: str, config: AuthConfig = DEFAULT_CONFIG) -> None:
    user = session.get(User, actor.user_id)
    if user is None or not verify_password(user.password_hash, current):
        raise InvalidInput(
            _("current password is wrong"), field="current_password",
            audit=dict(actor=actor.username, action=Action.ACCOUNT_PASSWORD_CHANGE,
                       entity_type="user", entity_id=actor.user_id, outcome="failure",
                       client=actor.client, reason="wrong current password"))
    try:
        check_password_policy(new, user.username, config)
    except InvalidInput as exc:
        exc.field = "new_password"
        raise
    set_password(session, user, new, field="new_password")
    user.must_change_password = False
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_PASSWORD_CHANGE,
                  entity_type="user", entity_id=actor.user_id, client=actor.client)


def set_password(session: Session, user: User, new: str, *, field: str) -> None:
    """Give ``user`` the password ``new`` (already checked against the policy), refusing the
    current one and the last ``PASSWORD_HISTORY`` before it; keeps the replaced hash."""
    earlier = session.execute(
        select(col(PasswordHistory.password_hash))
        .where(col(PasswordHistory.user_id) == user.id)
        .order_by(col(PasswordHistory.created_at).desc()).limit(PASSWORD_HISTORY - 1)
    ).scalars().all()
    if any(verify_password(h, new) for h in [user.password_hash, *earlier]):
        raise InvalidInput(
            _("{field}: must not be one of your last {PASSWORD_HISTORY} passwords").format(
                field=field, PASSWORD_HISTORY=PASSWORD_HISTORY), field=field)
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    user.password_hash = hash_password(new)
    user.password_changed_at = dt.datetime.now(dt.UTC)


def end_expired_sessions(session: Session, ledger: Ledger, *, config: AuthConfig,
                         now: dt.datetime | None = None) -> int:
    """The sweep: end every open session past its idle timeout or lifetime, or of an account
    that is inactive or past its end date, each audited as its next use would have been
    (``auth.timeout``); returns how many."""
    now = now or dt.datetime.now(dt.UTC)
    rows = session.execute(select(UserSession, User).join(
        User, col(User.id) == col(UserSession.user_id)).where(
        col(UserSession.ended_at).is_(None),
        or_(col(UserSession.last_seen) < now - config.idle_timeout,
            col(UserSession.created_at) < now - config.session_lifetime,
            col(User.is_active).is_(False), col(User.end_date).is_not(None)))).all()
    n = 0
    for us, user in rows:
        if now - us.last_seen > config.idle_timeout:
            reason = "idle_timeout"
        elif now - us.created_at > config.session_lifetime:
            reason = "lifetime"
        elif not user.is_active:
            reason = "inactive"
        elif account_ended(user, now):
            reason = "ended"
        else:
            continue
        us.ended_at, us.end_reason = now, reason
        ledger.append(session, actor=user.username, action=Action.AUTH_TIMEOUT,
                      entity_type="session", entity_id=us.id[:16], reason=reason,
                      client="sweep")
        n += 1
    session.flush()
    return n


def account_ended(user: User, now: dt.datetime | None = None) -> bool:
    """Whether the account is past its end date (§11.3.2): it may be used through that day."""
    return _ended_on(user.end_date, now)


def _ended_on(end_date: dt.date | None, now: dt.datetime | None) -> bool:
    today = (now or dt.datetime.now(dt.UTC)).date()
    return end_date is not None and today > end_date


def find_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(col(User.username) == username)).scalar_one_or_none()


# --- the administrator's operations --------------------------------------------------------

# --- second-factor enrolment (by the user) -------------------------------------------------

def enrol_second_factor_start(session: Session, *, actor: Actor,
                              config: AuthConfig = DEFAULT_CONFIG) -> tuple[str, str]:
    """Begin (or show again) the TOTP enrolment; returns (secret, otpauth URI)."""
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound(_("account not found"))
    secret = totp_mod.pending_secret(user, config=config) or totp_mod.begin_enrolment(
        user, config=config)
    session.flush()
    return secret, totp_mod.provisioning_uri(secret, user.username)


def enrol_second_factor_confirm(session: Session, ledger: Ledger, *, actor: Actor, code: str,
                                config: AuthConfig = DEFAULT_CONFIG) -> list[str]:
    """Activate the second factor with a first code; returns the recovery codes (shown once).
    The current session counts as second-factor authenticated from now on."""
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound(_("account not found"))
    codes = totp_mod.confirm_enrolment(session, user, code, config=config)
    if actor.session_id:
        us = session.get(UserSession, actor.session_id)
        if us is not None:
            us.second_factor = True
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_SECOND_FACTOR_ENROL,
                  entity_type="user", entity_id=user.id, client=actor.client)
    return codes


def regenerate_recovery_codes(session: Session, ledger: Ledger, *, actor: Actor,
                              password: str) -> list[str]:
    user = session.get(User, actor.user_id)
    if user is None or not user.totp_enabled:
        raise InvalidInput(_("enrol the second factor first"), field="totp")
    if not verify_password(user.password_hash, password):
        raise InvalidInput(_("wrong password"), field="password",
                           audit=dict(actor=actor.username, action=Action.ACCOUNT_RECOVERY_CODES,
                                      entity_type="user", entity_id=user.id, outcome="failure",
                                      client=actor.client, reason="wrong password"))
    codes = totp_mod.new_recovery_codes(session, user)
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_RECOVERY_CODES,
                  entity_type="user", entity_id=user.id, client=actor.client)
    return codes
