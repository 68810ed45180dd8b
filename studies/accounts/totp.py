"""The second factor: TOTP (RFC 6238, pyotp) enrolled by QR code, and one-time recovery codes.

The TOTP secret is stored encrypted (XSalsa20-Poly1305, key from the key directory); a code is
accepted once (the last accepted time step is kept); recovery codes are random, shown once and
stored as SHA-256 hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from typing import TYPE_CHECKING

import nacl.secret
import pyotp
import segno
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from studies.accounts.models import RecoveryCode, User
from studies.kernel.errors import Conflict, InvalidInput
from studies.kernel.i18n import _

if TYPE_CHECKING:
    from studies.accounts.config import AuthConfig

ISSUER = "EDC"
RECOVERY_CODES = 10
STEP = 30


def _box(config: AuthConfig) -> nacl.secret.SecretBox:
    key = hashlib.blake2b(config.totp_key, digest_size=32, person=b"edc-totp-secret").digest()
    return nacl.secret.SecretBox(key)


def seal(secret: str, config: AuthConfig) -> str:
    return _box(config).encrypt(secret.encode()).hex()


def unseal(sealed: str, config: AuthConfig) -> str:
    return _box(config).decrypt(bytes.fromhex(sealed)).decode()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """An SVG QR code (no script)."""
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, border=2, xmldecl=False)
    return buf.getvalue().decode()


def qr_data_uri(uri: str) -> str:
    """The QR code as a ``data:image/svg+xml`` URI for an ``<img>`` (CSP: img-src data:)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def _normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _is_totp_shape(code: str) -> bool:
    """Six ASCII digits (``str.isdigit`` also takes ``١٢٣٤٥٦`` and ``²``, which no
    authenticator shows and a constant-time compare refuses)."""
    return len(code) == 6 and code.isascii() and code.isdigit()


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(("edc-recovery:" + _normal(code)).encode()).hexdigest()


def check_code(session: Session, user: User, code: str, *, config: AuthConfig,
               now: dt.datetime | None = None) -> bool:
    """Accept a current TOTP code (±1 step, never the same step twice) or an unused recovery
    code (then spent)."""
    if not user.totp_enabled or not user.totp_secret:
        return False
    c = _normal(code)
    now = now or dt.datetime.now(dt.UTC)
    if _is_totp_shape(c):
        totp = pyotp.TOTP(unseal(user.totp_secret, config))
        step = int(now.timestamp()) // STEP
        for s in (step, step - 1, step + 1):
            if secrets.compare_digest(totp.at(s * STEP), c):
                if user.totp_last_step is not None and s <= user.totp_last_step:
                    return False  # replayed code
                user.totp_last_step = s
                return True
        return False
    rc = session.execute(select(RecoveryCode).where(
        col(RecoveryCode.user_id) == user.id, col(RecoveryCode.code_hash) == _recovery_hash(c),
        col(RecoveryCode.used_at).is_(None))).scalar_one_or_none()
    if rc is None:
        return False
    rc.used_at = now
    return True


def begin_enrolment(user: User, *, config: AuthConfig) -> str:
    """A new secret for an account without an active second factor (sealed on the user row,
    not active until confirmed with a code). Returns the plain secret for the QR code."""
    if user.totp_enabled:
        raise Conflict(_("the second factor is already enrolled; ask an administrator to reset "
                         "it"), field="totp")
    secret = pyotp.random_base32()
    user.totp_secret = seal(secret, config)
    return secret


def pending_secret(user: User, *, config: AuthConfig) -> str | None:
    if user.totp_enabled or not user.totp_secret:
        return None
    return unseal(user.totp_secret, config)


def confirm_enrolment(session: Session, user: User, code: str, *, config: AuthConfig,
                      now: dt.datetime | None = None) -> list[str]:
    """Activate the pending secret if ``code`` is right; returns fresh recovery codes."""
    secret = pending_secret(user, config=config)
    if secret is None:
        raise InvalidInput(_("start the enrolment first"), field="totp")
    now = now or dt.datetime.now(dt.UTC)
    c = _normal(code)
    step = int(now.timestamp()) // STEP
    totp = pyotp.TOTP(secret)
    ok = [s for s in (step, step - 1, step + 1)
          if _is_totp_shape(c) and secrets.compare_digest(totp.at(s * STEP), c)]
    if not ok:
        raise InvalidInput(_("wrong code: check the time on your phone and try again"),
                           field="code")
    user.totp_enabled = True
    user.totp_last_step = ok[0]
    return new_recovery_codes(session, user)


def new_recovery_codes(session: Session, user: User) -> list[str]:
    for rc in session.execute(select(RecoveryCode).where(
            col(RecoveryCode.user_id) == user.id)).scalars():
        session.delete(rc)
    session.flush()
    codes = []
    for _x in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)  # 40 bits, ten hex digits
        code = f"{raw[:5]}-{raw[5:]}"
        session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(code)))
        codes.append(code)
    session.flush()
    return codes


def clear(session: Session, user: User) -> None:
    user.totp_secret, user.totp_enabled, user.totp_last_step = None, False, None
    for rc in session.execute(select(RecoveryCode).where(
            col(RecoveryCode.user_id) == user.id)).scalars():
        session.delete(rc)
    session.flush()


def current_code(secret: str, now: dt.datetime | None = None) -> str:
    """The code an authenticator would show now (demo and tests)."""
    now = now or dt.datetime.now(dt.UTC)
    return pyotp.TOTP(secret).at(int(now.timestamp()))
