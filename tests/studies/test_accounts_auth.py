"""Accounts: password policy, first-login change, lockout, rate limit, sessions, scope,
separation of duties (§11.3.4.1 a, §11.1.2.4, SPEC §9)."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import PASSWORD, make_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import admin as account_admin
from studies.accounts import service as accounts
from studies.accounts.config import AuthConfig, check_password_policy
from studies.accounts.models import UserSession
from studies.accounts.ratelimit import RateLimiter
from studies.kernel.actor import PENDING_PASSWORD, SYSTEM, refuse_pending, require_different_person
from studies.kernel.errors import (
    InvalidInput,
    Locked,
    NotAuthenticated,
    PermissionDenied,
    TooManyRequests,
)
from studies.kernel.roles import Perm, Role

CFG = AuthConfig(second_factor_enforced=False)


def actions(session: Session, *names: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(LedgerEntry.action.in_(names))
                                .order_by(LedgerEntry.seq)).scalars())


def record_refusal(session: Session, ledger: Ledger, exc: Exception) -> None:
    """What the web layer does with a refusal's audit (in its own transaction)."""
    audit = getattr(exc, "audit", None)
    for entry in (audit if isinstance(audit, list) else [audit] if audit else []):
        ledger.append(session, **entry)


@pytest.mark.parametrize("password, rule", [
    ("short-pass1", "at least 12"),
    ("li.na.zhang.x", "username"),
    ("2026-Li.Na.Zhang.X!", "must not contain the username"),
    ("1qaz2wsx3edc", "most common"),
    ("QWERTY123456", "most common"),
    ("aaaaaaaaaaaa", "easy to guess"),
    ("123456789012", "easy to guess"),
    ("qwertyuiopasdf", "easy to guess"),
])
def test_password_policy_refuses_weak_passwords(password: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as e:
        check_password_policy(password, "li.na.zhang.x", CFG)
    assert rule in e.value.message and e.value.field == "password"


def test_a_short_username_inside_a_word_is_allowed_but_not_alone() -> None:
    check_password_policy("correct horse battery staple", "ec", CFG)
    with pytest.raises(InvalidInput, match="must not contain the username"):
        check_password_policy("abcdefghijklmnop", "abcdefghijklmnop", CFG)


def test_long_passphrases_are_accepted_and_classes_are_off_by_default() -> None:
    check_password_policy("tea kettle " * 5 + "blue moonlit", "li.na", CFG)  # 67 characters
    check_password_policy("river stone owl " * 16, "li.na", CFG)  # 256 characters
    check_password_policy("all lower case words here", "li.na", CFG)


def test_character_classes_when_the_deployment_turns_them_on() -> None:
    cfg = AuthConfig(password_require_classes=True)
    with pytest.raises(InvalidInput, match="three of"):
        check_password_policy("all lower case words here", "li.na", cfg)
    check_password_policy("Lower and Upper 2026", "li.na", cfg)


def test_minimum_length_is_a_setting() -> None:
    with pytest.raises(InvalidInput, match="at least 16"):
        check_password_policy("fourteen-chars", "li.na", AuthConfig(password_min_length=16))


def test_first_login_requires_a_password_change(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR, study="S1", must_change_password=True)
    _, actor = accounts.login(session, ledger, username="li.na", password=PASSWORD,
                              client="10.0.0.1", config=CFG)
    assert actor.pending == PENDING_PASSWORD
    with pytest.raises(PermissionDenied, match="change your password"):
        refuse_pending(actor)
    accounts.change_password(session, ledger, actor=actor, current=PASSWORD,
                             new="a brand new passphrase", config=CFG)
    _, actor = accounts.login(session, ledger, username="li.na",
                              password="a brand new passphrase", client="10.0.0.1", config=CFG)
    assert actor.pending is None and actor.can(Perm.STUDY_READ, "S1")


def test_the_last_five_passwords_are_refused(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    chain = [PASSWORD] + [f"passphrase number {i} here" for i in range(1, 6)]
    for old, new in zip(chain, chain[1:], strict=False):
        _, actor = accounts.login(session, ledger, username="li.na", password=old,
                                  client=None, config=CFG)
        accounts.change_password(session, ledger, actor=actor, current=old, new=new, config=CFG)
    _, actor = accounts.login(session, ledger, username="li.na", password=chain[5],
                              client=None, config=CFG)
    for reused in (chain[5], chain[1]):  # the current one, and the 5th most recent
        with pytest.raises(InvalidInput) as e:
            accounts.change_password(session, ledger, actor=actor, current=chain[5],
                                     new=reused, config=CFG)
        assert e.value.field == "new_password" and "last 5 passwords" in e.value.message
        assert "last 5 passwords" in e.value.message
    with pytest.raises(InvalidInput) as e:  # an administrator's reset obeys it too
        account_admin.reset_password(session, ledger, actor=SYSTEM, username="li.na",
                                     new_password=chain[3], config=CFG)
    assert e.value.field == "password"
    # the sixth back is allowed again
    accounts.change_password(session, ledger, actor=actor, current=chain[5], new=chain[0],
                             config=CFG)
    accounts.login(session, ledger, username="li.na", password=chain[0], client=None,
                   config=CFG)


def test_password_max_age_forces_a_change_when_set(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    cfg = AuthConfig(second_factor_enforced=False, password_max_age_days=90)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    _, actor = accounts.login(session, ledger, username="li.na", password=PASSWORD,
                              client=None, config=cfg, now=later)
    assert actor.pending == PENDING_PASSWORD
    _, actor = accounts.login(session, ledger, username="li.na", password=PASSWORD,
                              client=None, config=CFG, now=later)
    assert actor.pending is None  # off by default


def _fail(session: Session, ledger: Ledger, username: str, cfg: AuthConfig = CFG,
          now: dt.datetime | None = None) -> Exception:
    with pytest.raises((NotAuthenticated, Locked)) as e:
        accounts.login(session, ledger, username=username, password="wrong password!",
                       client="10.0.0.9", config=cfg, now=now)
    record_refusal(session, ledger, e.value)
    return e.value


def test_five_failures_in_fifteen_minutes_lock_the_account(session: Session,
                                                           ledger: Ledger) -> None:
    user = make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    for _ in range(4):
        assert isinstance(_fail(session, ledger, "li.na"), NotAuthenticated)
    assert actions(session, "auth.lockout") == []
    _fail(session, ledger, "li.na")
    [lock] = actions(session, "auth.lockout")
    assert lock.entity_id == user.id and "5 failed logins" in lock.reason
    # now even the right password is refused, and that refusal is audited
    with pytest.raises(Locked) as e:
        accounts.login(session, ledger, username="li.na", password=PASSWORD, client="10.0.0.9",
                       config=CFG)
    assert e.value.audit["reason"] == "locked"
    # after 15 minutes the lock has passed
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    accounts.login(session, ledger, username="li.na", password=PASSWORD, client="10.0.0.9",
                   config=CFG, now=later)


def test_an_administrator_unlocks_a_locked_account(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    admin = make_user(session, ledger, "root.admin", Role.ADMIN)
    for _ in range(5):
        _fail(session, ledger, "li.na")
    assert accounts.lock_state(session, accounts.find_user(session, "li.na").id,
                               CFG).locked_until is not None
    admin_actor = accounts.actor_for(session, admin, client="10.0.0.2")
    account_admin.unlock(session, ledger, actor=admin_actor, username="li.na")
    accounts.login(session, ledger, username="li.na", password=PASSWORD, client="10.0.0.9",
                   config=CFG)
    assert [e.actor for e in actions(session, "account.unlock")] == ["root.admin"]


def test_a_success_resets_the_failure_count(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    for _ in range(4):
        _fail(session, ledger, "li.na")
    accounts.login(session, ledger, username="li.na", password=PASSWORD, client=None, config=CFG)
    for _ in range(4):
        _fail(session, ledger, "li.na")
    assert actions(session, "auth.lockout") == []


def test_unknown_usernames_get_the_same_answer_and_are_audited(session: Session,
                                                               ledger: Ledger) -> None:
    exc = _fail(session, ledger, "nobody")
    assert exc.message == accounts.WRONG
    [entry] = actions(session, "auth.login")
    assert (entry.actor, entry.entity_id, entry.outcome) == ("nobody", "(unknown)", "failure")


def test_login_rate_limit_per_account_and_per_client(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    t = [0.0]
    limiter = RateLimiter(per_account=3, per_client=5, clock=lambda: t[0])
    for _ in range(3):
        accounts.login(session, ledger, username="li.na", password=PASSWORD, client="10.0.0.1",
                       config=CFG, limiter=limiter)
    with pytest.raises(TooManyRequests) as e:
        accounts.login(session, ledger, username="li.na", password=PASSWORD, client="10.0.0.1",
                       config=CFG, limiter=limiter)
    assert e.value.audit["reason"] == "rate_limited" and e.value.retry_after > 0
    # other usernames from the same address: limited per client address after 5 attempts
    for name in ("a1", "a2"):
        with pytest.raises(NotAuthenticated):
            accounts.login(session, ledger, username=name, password="x", client="10.0.0.1",
                           config=CFG, limiter=limiter)
    with pytest.raises(TooManyRequests):
        accounts.login(session, ledger, username="a3", password="x", client="10.0.0.1",
                       config=CFG, limiter=limiter)
    t[0] = 61.0
    accounts.login(session, ledger, username="li.na", password=PASSWORD, client="10.0.0.1",
                   config=CFG, limiter=limiter)


def test_idle_timeout_and_absolute_lifetime(session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    token, _ = accounts.login(session, ledger, username="li.na", password=PASSWORD, client=None,
                              config=CFG)
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(NotAuthenticated) as e:
        accounts.resolve_session(session, token=token, client=None, config=CFG,
                                 now=now + dt.timedelta(minutes=11))
    assert e.value.audit["reason"] == "idle_timeout"
    # kept busy every 5 minutes, the session still ends at its absolute lifetime (12 h)
    t = now
    while t < now + dt.timedelta(hours=11, minutes=55):
        t += dt.timedelta(minutes=5)
        accounts.resolve_session(session, token=token, client=None, config=CFG, now=t)
    with pytest.raises(NotAuthenticated) as e:
        accounts.resolve_session(session, token=token, client=None, config=CFG,
                                 now=t + dt.timedelta(minutes=6))
    assert e.value.audit["reason"] == "lifetime"


def test_an_administrator_revokes_every_session_of_a_user(session: Session,
                                                          ledger: Ledger) -> None:
    make_user(session, ledger, "li.na", Role.INVESTIGATOR)
    admin = make_user(session, ledger, "root.admin", Role.ADMIN)
    tokens = [accounts.login(session, ledger, username="li.na", password=PASSWORD, client=None,
                             config=CFG)[0] for _ in range(2)]
    n = account_admin.revoke_sessions(session, ledger, actor=accounts.actor_for(session, admin,
                                                                           client=None),
                                 username="li.na")
    assert n == 2
    for t in tokens:
        with pytest.raises(NotAuthenticated):
            accounts.resolve_session(session, token=t, client=None, config=CFG)
    ended = session.execute(select(UserSession.end_reason)).scalars().all()
    assert set(ended) == {"revoked"}


def test_scope_by_site_and_union_of_roles(session: Session, ledger: Ledger) -> None:
    user = accounts.create_user(
        session, ledger, actor=SYSTEM, username="li.na", display_name="Li Na",
        password=PASSWORD, roles=[(Role.INVESTIGATOR, "S1", "H01"), (Role.AUDITOR, None)])
    actor = accounts.actor_for(session, user, client=None)
    assert actor.can(Perm.STUDY_READ, "S1", "H01")
    assert not actor.can(Perm.STUDY_READ, "S1", "H02")
    assert not actor.can(Perm.STUDY_READ, "S2")
    assert actor.sites(Perm.STUDY_READ, "S1") == {"H01"}
    assert actor.can(Perm.AUDIT_READ, "S2")  # union: the auditor role holds everywhere
    assert not actor.can(Perm.ACCOUNT_MANAGE)  # deny by default


def test_the_administrator_cannot_read_clinical_data_or_the_trail(session: Session,
                                                                  ledger: Ledger) -> None:
    admin = accounts.actor_for(session, make_user(session, ledger, "root.admin", Role.ADMIN),
                               client=None)
    for perm in (Perm.STUDY_READ, Perm.AUDIT_READ, Perm.LEDGER_REDACT):
        assert not admin.can(perm, "S1")


def test_nobody_approves_their_own_request(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "li.na", Role.DATA_MANAGER)
    actor = accounts.actor_for(session, user, client=None)
    with pytest.raises(PermissionDenied, match="own request"):
        require_different_person(actor, user.id)
    require_different_person(actor, "someone-else")


def test_admin_operations_are_refused_to_others_and_audited(session: Session,
                                                            ledger: Ledger) -> None:
    pi = accounts.actor_for(session, make_user(session, ledger, "pi", Role.INVESTIGATOR),
                            client=None)
    with pytest.raises(PermissionDenied):
        accounts.create_user(session, ledger, actor=pi, username="x.y", display_name="X",
                             password=PASSWORD, roles=[])
    admin = accounts.actor_for(session, make_user(session, ledger, "root.admin", Role.ADMIN),
                               client="10.0.0.2")
    accounts.create_user(session, ledger, actor=admin, username="x.y", display_name="X",
                         password=PASSWORD, roles=[(Role.MONITOR, "S1", "H01")], config=CFG)
    account_admin.grant_role(session, ledger, actor=admin, username="x.y", role=Role.SPONSOR,
                        study="S1")
    account_admin.revoke_role(session, ledger, actor=admin, username="x.y", role=Role.SPONSOR,
                         study="S1")
    [view] = [a for a in account_admin.list_accounts(session, actor=admin) if a.username == "x.y"]
    assert view.roles == ["monitor@S1/H01"]
    assert [e.action for e in actions(session, "account.role_grant", "account.role_revoke")] \
        == ["account.role_grant", "account.role_revoke"]


def test_the_administrator_role_is_never_combined_with_another(session: Session,
                                                               ledger: Ledger) -> None:
    with pytest.raises(InvalidInput, match="separation of duties"):
        accounts.create_user(session, ledger, actor=SYSTEM, username="both",
                             display_name="Both", password=PASSWORD,
                             roles=[(Role.ADMIN, None), (Role.AUDITOR, None)])
    root = make_user(session, ledger, "root", Role.ADMIN)
    other = make_user(session, ledger, "root2", Role.ADMIN)
    admin = accounts.actor_for(session, root, client=None)
    with pytest.raises(PermissionDenied, match="your own roles"):
        account_admin.grant_role(session, ledger, actor=admin, username="root", role=Role.AUDITOR)
    with pytest.raises(InvalidInput, match="separation of duties"):
        account_admin.grant_role(session, ledger, actor=admin, username=other.username,
                            role=Role.INVESTIGATOR, study="S1")
