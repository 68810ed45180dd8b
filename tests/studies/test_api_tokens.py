"""API tokens for machine clients: one role and study, expiring, revocable, stored hashed,
every use audited (SPEC §9)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from factories import make_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import admin as account_admin
from studies.accounts import service as accounts
from studies.accounts import tokens
from studies.accounts.models import ApiToken
from studies.kernel.actor import SYSTEM, Actor
from studies.kernel.errors import InvalidInput, NotAuthenticated, PermissionDenied
from studies.kernel.roles import Perm, Role


def sponsor(session: Session, ledger: Ledger) -> Actor:
    user = accounts.create_user(session, ledger, actor=SYSTEM, username="sponsor.bot",
                                display_name="Sponsor script", password="long enough secret",
                                roles=[(Role.SPONSOR, "S1"), (Role.MONITOR, "S2")],
                                must_change_password=False)
    return accounts.actor_for(session, user, client="10.0.0.5", session_id="s")


def test_token_acts_in_its_one_role_and_study_and_each_use_is_audited(
        session: Session, ledger: Ledger) -> None:
    actor = sponsor(session, ledger)
    issued = tokens.create_token(session, ledger, actor=actor, name="nightly", role=Role.SPONSOR,
                                 study="S1", days=30)
    row = session.get(ApiToken, issued.id)
    assert row.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in row.token_hash
    machine = tokens.authenticate(session, ledger, token=issued.token, client="198.51.100.1",
                                  method="GET", path="/api/v1/x")
    assert machine.can(Perm.STUDY_READ, "S1") and not machine.can(Perm.STUDY_READ, "S2")
    assert machine.roles == {Role.SPONSOR}
    [use] = session.execute(select(LedgerEntry).where(LedgerEntry.action == "token.use")
                            ).scalars().all()
    assert (use.actor, use.client, use.reason) == ("sponsor.bot", "198.51.100.1",
                                                   "GET /api/v1/x")


def test_expired_revoked_and_unknown_tokens_are_refused(session: Session,
                                                        ledger: Ledger) -> None:
    actor = sponsor(session, ledger)
    issued = tokens.create_token(session, ledger, actor=actor, name="t", role=Role.SPONSOR,
                                 study="S1", days=1)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    for tok, now, reason in ((issued.token, later, "expired"), ("edc_nope", None, "unknown")):
        with pytest.raises(NotAuthenticated) as e:
            tokens.authenticate(session, ledger, token=tok, client=None, method="GET", path="/",
                                now=now)
        assert e.value.audit["reason"] == reason
    tokens.revoke_token(session, ledger, actor=actor, token_id=issued.id)
    with pytest.raises(NotAuthenticated) as e:
        tokens.authenticate(session, ledger, token=issued.token, client=None, method="GET",
                            path="/")
    assert e.value.audit["reason"] == "revoked"


def test_tokens_only_for_roles_held_and_never_privileged(session: Session,
                                                         ledger: Ledger) -> None:
    actor = sponsor(session, ledger)
    with pytest.raises(PermissionDenied):
        tokens.create_token(session, ledger, actor=actor, name="t", role=Role.SPONSOR,
                            study="S2", days=1)
    dm = accounts.actor_for(session, make_user(session, ledger, "dm", Role.DATA_MANAGER),
                            client=None, session_id="s")
    with pytest.raises(InvalidInput, match="privileged"):
        tokens.create_token(session, ledger, actor=dm, name="t", role=Role.DATA_MANAGER,
                            study=None, days=1)
    with pytest.raises(InvalidInput) as e:
        tokens.create_token(session, ledger, actor=actor, name="t", role=Role.SPONSOR,
                            study="S1", days=400)
    assert e.value.field == "days"


def test_a_token_loses_its_power_when_the_role_is_revoked(session: Session,
                                                          ledger: Ledger) -> None:
    actor = sponsor(session, ledger)
    issued = tokens.create_token(session, ledger, actor=actor, name="t", role=Role.SPONSOR,
                                 study="S1", days=5)
    admin = accounts.actor_for(session, make_user(session, ledger, "root", Role.ADMIN),
                               client=None)
    account_admin.revoke_role(session, ledger, actor=admin, username="sponsor.bot",
                         role=Role.SPONSOR, study="S1")
    machine = tokens.authenticate(session, ledger, token=issued.token, client=None,
                                  method="GET", path="/")
    assert not machine.can(Perm.STUDY_READ, "S1")
