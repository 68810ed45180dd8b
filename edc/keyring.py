"""The key directory (``EDC_KEY_DIR``): secrets kept apart from the database (§11.3.4.6,
加密数据和密钥分开存储).

Each secret is a file of its own, mode 0600, holding base64 of 32 random bytes. ``edc init``
creates missing ones and never overwrites an existing one. A copy of the database alone reveals
nothing without this directory.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.utils
from nacl.signing import SigningKey

from audit_trail.service import CheckpointSigner

SECRETS = {
    "signing.key": "Ed25519 seed: signs ledger checkpoints, manifests, electronic signatures",
    "code_index.key": "XChaCha20-Poly1305 key of the code index (subject identities)",
    "blind_index.key": "HMAC key of the blind index used to detect duplicate enrolment",
    "deid.key": "Secret for date-shift offsets and pseudonymous tokens in extracts",
    "session.key": "Signs session and CSRF cookies",
}
META = "keyring.json"


class KeyringError(Exception):
    """The key directory is missing, unreadable or corrupt; the message says what to do."""


@dataclass(frozen=True)
class Keyring:
    directory: Path
    origin: str
    signing_key: SigningKey
    code_index_key: bytes
    blind_index_key: bytes
    deid_key: bytes
    session_key: bytes

    @property
    def signer(self) -> CheckpointSigner:
        return CheckpointSigner(origin=self.origin, key=self.signing_key)


def _write_secret(path: Path, raw: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(raw).decode() + "\n")


def create(directory: Path, *, origin: str) -> list[str]:
    """Create the directory and every missing secret; return the names created. Idempotent."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    created = []
    for name in SECRETS:
        path = directory / name
        if not path.exists():
            _write_secret(path, nacl.utils.random(32))
            created.append(name)
    meta = directory / META
    if not meta.exists():
        fd = os.open(meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"origin": origin, "format": 1}, fh)
            fh.write("\n")
        created.append(META)
    return created


def _read_secret(directory: Path, name: str) -> bytes:
    path = directory / name
    if not path.exists():
        raise KeyringError(
            f"key file {path} is missing; restore it from the key backup "
            f"(or run `edc init` on a new installation)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyringError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except (ValueError, UnicodeDecodeError):
        raw = b""
    if len(raw) != 32:
        raise KeyringError(
            f"key file {path} is corrupt (expected base64 of 32 bytes); restore it from backup"
        )
    return raw


def load(directory: Path) -> Keyring:
    """Read every secret, failing with a one-line KeyringError that names the file at fault."""
    if not directory.is_dir():
        raise KeyringError(f"key directory {directory} does not exist; run `edc init` first "
                        f"or set EDC_KEY_DIR")
    try:
        meta = json.loads((directory / META).read_text())
        origin = str(meta["origin"])
    except FileNotFoundError as exc:
        raise KeyringError(f"{directory / META} is missing; restore the key directory") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyringError(f"{directory / META} is corrupt; restore it from backup") from exc
    return Keyring(
        directory=directory,
        origin=origin,
        signing_key=SigningKey(_read_secret(directory, "signing.key")),
        code_index_key=_read_secret(directory, "code_index.key"),
        blind_index_key=_read_secret(directory, "blind_index.key"),
        deid_key=_read_secret(directory, "deid.key"),
        session_key=_read_secret(directory, "session.key"),
    )
