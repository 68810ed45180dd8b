"""The second factor (TOTP): enrolment, required for privileged roles and outside logins,
no replay, recovery codes once, administrator reset (§11.6.2.2 g, SPEC §9)."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from factories import PASSWORD, enrol_totp, make_user, strict_auth
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import admin as account_admin
from studies.accounts import service as accounts
from studies.accounts import totp
from studies.kernel.actor import PENDING_SECOND_FACTOR, Actor
from studies.kernel.errors import InvalidInput, NotAuthenticated
from studies.kernel.roles import Role

CFG = strict_auth()
INSIDE, OUTSIDE = "10.1.2.3", "203.0.113.7"


def code(secret: str, offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30 * offset))


def login(session: Session, ledger: Ledger, username: str, client: str,
          otp: str | None = None) -> Actor:
    return accounts.login(session, ledger, username=username, password=PASSWORD,
                          client=client, totp=otp, config=CFG)[1]


def test_privileged_role_without_enrolment_may_only_enrol(session: Session,
                                                         ledger: Ledger) -> None:
    make_user(session, ledger, "dm", Role.DATA_MANAGER, study="S1")
    actor = login(session, ledger, "dm", INSIDE)
    assert actor.pending == PENDING_SECOND_FACTOR
    secret, uri = accounts.enrol_second_factor_start(session, actor=actor, config=CFG)
    assert uri.startswith("otpauth://totp/EDC:dm?secret=" + secret)
    with pytest.raises(InvalidInput) as e:
        accounts.enrol_second_factor_confirm(session, ledger, actor=actor, code="000000",
                                             config=CFG)
    assert e.value.field == "code"
    codes = accounts.enrol_second_factor_confirm(session, ledger, actor=actor,
                                                 code=code(secret), config=CFG)
    assert len(codes) == 10 and len(set(codes)) == 10
    # the session that enrolled is now second-factor authenticated
    token = None  # next login needs the code
    with pytest.raises(NotAuthenticated) as missing:
        login(session, ledger, "dm", INSIDE)
    assert missing.value.field == "totp"
    actor = login(session, ledger, "dm", INSIDE, code(secret, 1))
    assert actor.pending is None and actor.second_factor
    assert token is None


def test_secret_is_stored_encrypted(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "dm", Role.DATA_MANAGER)
    secret = enrol_totp(session, user, CFG)
    assert secret not in (user.totp_secret or "")
    assert totp.unseal(user.totp_secret or "", CFG) == secret


def test_a_code_is_not_accepted_twice(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "dm", Role.DATA_MANAGER)
    secret = enrol_totp(session, user, CFG)
    c = code(secret)
    login(session, ledger, "dm", INSIDE, c)
    with pytest.raises(NotAuthenticated) as e:
        login(session, ledger, "dm", INSIDE, c)
    assert e.value.audit[0]["reason"] == "second_factor"  # counted towards lockout


def test_recovery_code_works_once(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "dm", Role.DATA_MANAGER)
    enrol_totp(session, user, CFG)
    [rc, *_] = totp.new_recovery_codes(session, user)
    assert login(session, ledger, "dm", INSIDE, rc.upper()).second_factor
    with pytest.raises(NotAuthenticated):
        login(session, ledger, "dm", INSIDE, rc)


def test_outside_the_hospital_network_the_second_factor_is_required(
        session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "inv", Role.INVESTIGATOR, study="S1")
    # inside: a password suffices for a non-privileged role
    assert login(session, ledger, "inv", INSIDE).pending is None
    # outside without enrolment: refused (enrol from inside first)
    with pytest.raises(NotAuthenticated, match="outside the hospital"):
        login(session, ledger, "inv", OUTSIDE)
    secret = enrol_totp(session, user, CFG)
    with pytest.raises(NotAuthenticated):
        login(session, ledger, "inv", OUTSIDE)
    assert login(session, ledger, "inv", OUTSIDE, code(secret)).second_factor


def test_an_unknown_client_address_counts_as_outside() -> None:
    assert not CFG.inside_hospital("testclient")
    assert not CFG.inside_hospital(None)
    assert CFG.inside_hospital("10.200.0.1")


def test_administrator_resets_a_lost_second_factor(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "dm", Role.DATA_MANAGER)
    enrol_totp(session, user, CFG)
    admin = accounts.actor_for(session, make_user(session, ledger, "root", Role.ADMIN),
                               client=INSIDE)
    account_admin.reset_second_factor(session, ledger, actor=admin, username="dm")
    assert not user.totp_enabled and user.totp_secret is None
    assert login(session, ledger, "dm", INSIDE).pending == PENDING_SECOND_FACTOR


def test_qr_code_is_an_svg_without_script() -> None:
    svg = totp.qr_svg("otpauth://totp/EDC:dm?secret=JBSWY3DPEHPK3PXP&issuer=EDC")
    assert svg.startswith("<svg") and "<script" not in svg
    assert totp.qr_data_uri("otpauth://x").startswith("data:image/svg+xml")


def test_an_offered_but_wrong_code_fails_the_login(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "inv", Role.INVESTIGATOR, study="S1")
    secret = enrol_totp(session, user, CFG)
    with pytest.raises(NotAuthenticated):
        login(session, ledger, "inv", INSIDE, "000000" if code(secret) != "000000" else "111111")
    assert login(session, ledger, "inv", INSIDE, code(secret)).second_factor
