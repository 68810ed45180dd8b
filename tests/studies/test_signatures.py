"""Electronic signatures (21 CFR 11.200): all components first, at least the password later in
the same continuous session, all again after a timeout; bound to the content's hash; a signed
checkpoint per signature."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from factories import PASSWORD, enrol_totp, make_user, strict_auth
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerCheckpoint, LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.signatures import content_hash, sign, signatures_for
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput, NotAuthenticated, PermissionDenied
from studies.kernel.roles import Role

CFG = strict_auth()
DOC = content_hash(b"unlock subject S1-001 form AE v3")


def pi_session(session: Session, ledger: Ledger) -> tuple[Actor, str]:
    user = make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR, study="S1")
    secret = enrol_totp(session, user, CFG)
    code = pyotp.TOTP(secret).now()
    _, actor = accounts.login(session, ledger, username="pi", password=PASSWORD,
                              client="10.0.0.1", totp=code, config=CFG)
    return actor, secret


def next_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))


def test_first_signature_needs_every_component_later_ones_the_password(
        session: Session, ledger: Ledger) -> None:
    actor, secret = pi_session(session, ledger)
    kw = dict(actor=actor, meaning="approve unlock", content_hash=DOC, entity_type="unlock",
              entity_id="u1", study="S1", config=CFG)
    with pytest.raises(NotAuthenticated) as e:
        sign(session, ledger, username="pi", password=PASSWORD, **kw)
    assert e.value.field == "totp" and e.value.audit["action"] == "signature.sign"
    with pytest.raises(NotAuthenticated) as e:
        sign(session, ledger, username="pi", password="wrong", totp=next_code(secret), **kw)
    assert e.value.field == "password"
    first = sign(session, ledger, username="pi", password=PASSWORD, totp=next_code(secret),
                 **kw)
    second = sign(session, ledger, username="", password=PASSWORD, **kw)
    assert [s.id for s in signatures_for(session, entity_type="unlock", entity_id="u1")] == [
        first.id, second.id]
    assert first.meaning == "approve unlock" and first.content_hash == DOC
    assert first.line().startswith("Pi (pi) · ") and first.line().endswith(" · approve unlock")
    entries = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "signature.sign")).scalars().all()
    assert [e.reason for e in entries] == ["approve unlock", "approve unlock"]
    assert "username+password+totp" in entries[0].changes and '"password"' in entries[1].changes
    sizes = session.execute(select(LedgerCheckpoint.reason)).scalars().all()
    assert sizes.count("signature") == 2


def test_after_a_timeout_every_component_again(session: Session, ledger: Ledger) -> None:
    actor, secret = pi_session(session, ledger)
    kw = dict(meaning="approve extract", content_hash=DOC, entity_type="extract",
              entity_id="e1", config=CFG)
    sign(session, ledger, actor=actor, username="pi", password=PASSWORD, totp=next_code(secret),
         **kw)
    # the session times out; the next session's first signature needs all components
    accounts.find_user(session, "pi").totp_last_step = None  # as if a minute had passed
    _, actor2 = accounts.login(session, ledger, username="pi", password=PASSWORD,
                               client="10.0.0.1", totp=pyotp.TOTP(secret).now(), config=CFG)
    with pytest.raises(NotAuthenticated):
        sign(session, ledger, actor=actor2, username="pi", password=PASSWORD, **kw)


def test_signing_as_someone_else_or_with_a_bad_hash_is_refused(session: Session,
                                                               ledger: Ledger) -> None:
    actor, secret = pi_session(session, ledger)
    with pytest.raises(NotAuthenticated) as e:
        sign(session, ledger, actor=actor, username="other", password=PASSWORD,
             totp=next_code(secret), meaning="approve", content_hash=DOC, entity_type="x",
             entity_id="1", config=CFG)
    assert e.value.field == "username"
    with pytest.raises(InvalidInput) as e2:
        sign(session, ledger, actor=actor, username="pi", password=PASSWORD, meaning="approve",
             content_hash="abc", entity_type="x", entity_id="1", config=CFG)
    assert e2.value.field == "content_hash"


def test_tokens_cannot_sign(session: Session, ledger: Ledger) -> None:
    actor, _ = pi_session(session, ledger)
    machine = Actor(user_id=actor.user_id, username="pi", display_name="Pi",
                             grants=actor.grants, token_id="t1")
    with pytest.raises(PermissionDenied):
        sign(session, ledger, actor=machine, username="pi", password=PASSWORD,
             meaning="approve", content_hash=DOC, entity_type="x", entity_id="1", config=CFG)
