"""Electronic signatures (21 CFR 11.50, 11.70, 11.200) — the one mechanism every capability
that needs a signature (unlock, approvals, sign-off) calls.

``sign`` re-authenticates the signer:

- the first signature in a session needs every component: username, password and — where the
  signer's role requires a second factor, or the session was opened with one — a TOTP code;
- later signatures in the same continuous session need at least the password;
- after a timeout the session has ended, so the next session's first signature needs all again.

It records signer, time and meaning, binds them to the SHA-256 of the exact content signed,
appends a ``signature.sign`` ledger entry and writes a signed ledger checkpoint. Failures are
refused and audited: a wrong username, password or second-factor code raises
:class:`~studies.kernel.errors.SignatureRefused` naming the field (HTTP 422, the session kept);
only an ended session is :class:`NotAuthenticated` (401). The caller passes the
authentication settings (``config``, with the key that opens the stored second-factor secret).
As at login, repeated wrong passwords or codes are limited: after ``lockout_threshold`` refused
signatures of one user within ``lockout_window`` (none signed since), further signatures are
refused with 429 until the window has passed; the session stays valid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.models import LedgerEntry
from audit_trail.service import Change, Ledger, canonical_ts
from studies.accounts import totp as totp_mod
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature, User, UserSession
from studies.accounts.service import DEFAULT_CONFIG, login, logout, verify_password
from studies.kernel.actor import Actor, require
from studies.kernel.errors import (
    InvalidInput,
    NotAuthenticated,
    PermissionDenied,
    SignatureRefused,
    TooManyRequests,
)
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import PRIVILEGED, Perm

HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def content_hash(data: bytes) -> str:
    """The hash a signature binds to: SHA-256 of the exact bytes shown to the signer."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SignatureView:
    """What is shown with a signed thing: name, time, meaning (21 CFR 11.50)."""

    id: str
    username: str
    display_name: str
    meaning: str
    signed_at: dt.datetime
    content_hash: str

    def line(self) -> str:
        return (f"{self.display_name} ({self.username}) · "
                f"{self.signed_at.strftime('%Y-%m-%d %H:%M:%S UTC')} · {self.meaning}")


def view_of(s: Signature) -> SignatureView:
    return SignatureView(s.id, s.username, s.display_name, s.meaning, s.signed_at,
                         s.content_hash)


def sign(session: Session, ledger: Ledger, *, actor: Actor, username: str, password: str,
         totp: str | None = None, meaning: str, content_hash: str, entity_type: str,
         entity_id: str, study: str | None = None,
         config: AuthConfig = DEFAULT_CONFIG) -> SignatureView:
    """Sign ``content_hash`` with ``meaning`` as ``actor``; see the module's docstring."""
    meaning = meaning.strip()
    if not meaning or len(meaning) > 200:
        raise InvalidInput(_("meaning: 1–200 characters"), field="meaning")
    if not HASH_RE.match(content_hash):
        raise InvalidInput(_("content_hash: 64 lower-case hex digits (SHA-256)"),
                           field="content_hash")
    if actor.session_id is None or actor.token_id is not None or actor.pending:
        raise PermissionDenied(_("electronic signatures need an interactive session"),
                               clause="§11.3.4.9")
    us = session.get(UserSession, actor.session_id)
    user = session.get(User, actor.user_id)
    if us is None or user is None or us.ended_at is not None:
        raise NotAuthenticated(_("please log in again"))

    def refuse(reason: str, message: str, field: str) -> SignatureRefused:
        return SignatureRefused(message, field=field, audit=dict(
            actor=actor.username, action=Action.SIGNATURE_SIGN, entity_type=entity_type,
            entity_id=entity_id[:200], study=study, outcome="failure", client=actor.client,
            reason=f"{reason}; meaning: {meaning}"))

    now = dt.datetime.now(dt.UTC)
    if _recent_refusals(session, user.username, config, now) >= config.lockout_threshold:
        minutes = int(config.lockout_window.total_seconds() // 60)
        raise TooManyRequests(
            _("too many refused signatures; try again in {minutes} minutes").format(
                minutes=minutes), field="password",
            retry_after=int(config.lockout_window.total_seconds()), audit=dict(
                actor=actor.username, action=Action.SIGNATURE_SIGN, entity_type=entity_type,
                entity_id=entity_id[:200], study=study, outcome="denied", client=actor.client,
                reason=f"too many refused signatures; meaning: {meaning}"))
    first = us.signed_at is None
    if (first or username.strip()) and username.strip() != user.username:
        raise refuse("username does not match the session", _("the username must be your own"),
                     "username")
    if not verify_password(user.password_hash, password):
        raise refuse("wrong password", _("wrong password"), "password")
    needs_totp = first and user.totp_enabled and (
        us.second_factor or (config.second_factor_enforced and actor.roles & PRIVILEGED))
    if needs_totp:
        if not totp or not totp_mod.check_code(session, user, totp, config=config):
            raise refuse("wrong or missing second factor",
                         _("the first signature of a session needs your second-factor code"),
                         "totp")
    if first:
        us.signed_at = now
    entry = ledger.append(
        session, actor=user.username, action=Action.SIGNATURE_SIGN, entity_type=entity_type,
        entity_id=entity_id[:200], study=study, client=actor.client, reason=meaning,
        changes=[Change("content_hash", None, content_hash),
                 Change("components", None,
                        "username+password+totp" if needs_totp else
                        "username+password" if first else "password")])
    sig = Signature(user_id=user.id, username=user.username, display_name=user.display_name,
                    meaning=meaning, content_hash=content_hash, entity_type=entity_type,
                    entity_id=entity_id[:200], study=study, signed_at=now, ledger_seq=entry.seq)
    session.add(sig)
    session.flush()
    ledger.checkpoint(session, reason="signature")
    return view_of(sig)


def _recent_refusals(session: Session, username: str, config: AuthConfig,
                     now: dt.datetime) -> int:
    """Refused signatures of ``username`` within the lockout window since their last one."""
    rows = session.execute(
        select(col(LedgerEntry.outcome)).where(
            col(LedgerEntry.actor) == username,
            col(LedgerEntry.action) == Action.SIGNATURE_SIGN,
            col(LedgerEntry.ts) >= canonical_ts(now - config.lockout_window))
        .order_by(col(LedgerEntry.seq).desc())).scalars()
    n = 0
    for outcome in rows:  # newest first
        if outcome == "success":
            break
        n += outcome == "failure"
    return n


def record_refusal(session: Session, ledger: Ledger, exc: SignatureRefused) -> None:
    """Write a refused signature's audit entry in the caller's transaction — for a page that
    shows the refusal on itself (answered 422) instead of rolling its request back."""
    if exc.audit is not None:
        ledger.append(session, **exc.audit)


def signatures_for(session: Session, *, entity_type: str, entity_id: str) -> list[SignatureView]:
    """Every signature on a thing, oldest first, to show beside it."""
    rows = session.execute(select(Signature).where(
        col(Signature.entity_type) == entity_type, col(Signature.entity_id) == entity_id)
        .order_by(col(Signature.signed_at))).scalars()
    return [view_of(s) for s in rows]


def signing_needs(session: Session, *, actor: Actor,
                  config: AuthConfig = DEFAULT_CONFIG) -> tuple[bool, bool]:
    """(first, needs_totp) for the actor's next signature, to build the signing form."""
    us = session.get(UserSession, actor.session_id) if actor.session_id else None
    user = session.get(User, actor.user_id)
    first = us is None or us.signed_at is None
    needs = bool(first and user is not None and user.totp_enabled and us is not None and (
        us.second_factor or (config.second_factor_enforced and actor.roles & PRIVILEGED)))
    return first, needs


def sign_at_console(session: Session, ledger: Ledger, *, username: str, password: str,
                    totp: str | None, client: str, meaning: str, content_hash: str,
                    entity_type: str, entity_id: str, study: str | None = None,
                    needs: Perm | None = None,
                    config: AuthConfig = DEFAULT_CONFIG) -> tuple[Actor, SignatureView]:
    """A signature given at the server's console (``edc`` commands), where there is no web
    session: the password opens a one-use session (a login, audited, with its lockout), the
    actor must hold ``needs``, then :func:`sign` checks every component again — username,
    password and, where the account has one, the second-factor code — and the session ends.
    Returns the signer and the signature."""
    _token, actor = login(session, ledger, username=username, password=password, client=client,
                          config=replace(config, second_factor_enforced=False))
    try:
        if needs is not None:
            require(actor, needs)
        view = sign(session, ledger, actor=actor, username=username, password=password,
                    totp=totp, meaning=meaning, content_hash=content_hash,
                    entity_type=entity_type, entity_id=entity_id, study=study, config=config)
    finally:
        logout(session, ledger, actor=actor)
    return actor, view
