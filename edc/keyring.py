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
from studies.subjects.crypto import CodeIndexKeys, key_id

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
    # Older code-index keys still in the directory (retired after a rotation, or staged by an
    # interrupted one), so that every entry stays readable whichever key encrypted it.
    code_index_older: tuple[bytes, ...] = ()
    # Names and modification times of the code-index key files when read (see ``refreshed``).
    code_index_stamp: tuple[tuple[str, int], ...] = ()

    @property
    def signer(self) -> CheckpointSigner:
        return CheckpointSigner(origin=self.origin, key=self.signing_key)

    def code_index_keys(self) -> CodeIndexKeys:
        """The keys the code index is used with (current, older, blind-index key)."""
        return CodeIndexKeys(current=self.code_index_key, blind=self.blind_index_key,
                             older=self.code_index_older)


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
        code_index_older=tuple(key for _, key in older_code_index_keys(directory)),
        code_index_stamp=code_index_stamp(directory),
    )


def code_index_stamp(directory: Path) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((p.name, p.stat().st_mtime_ns)
                        for p in directory.glob(f"{CODE_INDEX}*")))


def refreshed(keys: Keyring) -> Keyring:
    """``keys``, or the directory read again if its code-index key files changed since (a
    rotation by ``edc keys rotate-code-index`` while the server runs). Raises KeyringError if
    the directory became unusable."""
    try:
        stamp = code_index_stamp(keys.directory)
    except OSError as exc:
        raise KeyringError(f"key directory {keys.directory} is unreadable: {exc}") from exc
    return keys if stamp == keys.code_index_stamp else load(keys.directory)


# ── Code-index key rotation (files) ──────────────────────────────────────────────────────────
#
# ``code_index.key`` is always the key new entries are encrypted with. A rotation (driven by
# ``edc keys rotate-code-index``) goes:
#   1. stage: copy the current key to ``code_index.key.<stamp>.retired`` and write the new key
#      to ``code_index.key.<stamp>.pending`` (both fsynced, 0600);
#   2. the database re-encrypts every entry under the pending key in ONE transaction;
#   3. promote: rename the pending file over ``code_index.key`` (atomic), fsync the directory.
# Interrupted before 2 commits: the database is under the old key, still ``code_index.key``.
# Interrupted between 2 and 3: the database is under the pending key, which ``load()`` reads
# as an older key, so every entry stays readable; the next rotation completes the promotion.
# Retired keys are kept until the operator removes them (``edc keys status`` shows whether any
# entry still needs one).

CODE_INDEX = "code_index.key"


@dataclass(frozen=True)
class StagedRotation:
    directory: Path
    stamp: str
    old_key: bytes
    new_key: bytes

    @property
    def pending(self) -> Path:
        return self.directory / f"{CODE_INDEX}.{self.stamp}.pending"

    @property
    def retired(self) -> Path:
        return self.directory / f"{CODE_INDEX}.{self.stamp}.retired"


def older_code_index_keys(directory: Path) -> list[tuple[Path, bytes]]:
    """Retired and pending code-index key files, oldest first (by name)."""
    out = []
    for path in sorted(directory.glob(f"{CODE_INDEX}.*")):
        if path.name.endswith((".retired", ".pending")):
            out.append((path, _read_secret(directory, path.name)))
    return out


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durable(path: Path, raw: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(raw).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def stage_code_index_rotation(directory: Path, *, stamp: str) -> StagedRotation:
    """Step 1: keep a retired copy of the current key and stage a new random key."""
    old = _read_secret(directory, CODE_INDEX)
    staged = StagedRotation(directory, stamp, old, nacl.utils.random(32))
    if staged.pending.exists() or staged.retired.exists():
        raise KeyringError(f"a rotation stamped {stamp} already exists in {directory}")
    _write_durable(staged.retired, old)
    _write_durable(staged.pending, staged.new_key)
    _fsync_dir(directory)
    return staged


def promote_code_index_key(staged: StagedRotation) -> None:
    """Step 3: the pending key becomes ``code_index.key`` (atomic rename)."""
    os.replace(staged.pending, directory_key(staged.directory))
    _fsync_dir(staged.directory)


def abandon_code_index_rotation(staged: StagedRotation) -> None:
    """The database transaction did not commit: drop the staged key and the duplicate copy of
    the (still current) old key."""
    staged.pending.unlink(missing_ok=True)
    if _read_secret(staged.directory, CODE_INDEX) == staged.old_key:
        staged.retired.unlink(missing_ok=True)
    _fsync_dir(staged.directory)


def directory_key(directory: Path) -> Path:
    return directory / CODE_INDEX


def recover_code_index_rotation(directory: Path, keys_in_use: set[str]) -> list[str]:
    """Finish or drop what an interrupted rotation left. A pending key that encrypts entries
    (the database committed) is promoted; one that encrypts none (it did not) is removed.
    Returns what was done, one line each. Idempotent."""
    done = []
    for path in sorted(directory.glob(f"{CODE_INDEX}.*.pending")):
        key = _read_secret(directory, path.name)
        if key_id(key) in keys_in_use:
            # Entries written after the interruption may use the old current key: keep it.
            current = _read_secret(directory, CODE_INDEX)
            kept = {k for p, k in older_code_index_keys(directory) if p != path}
            if current not in kept:
                stamp = path.name[len(CODE_INDEX) + 1:-len(".pending")]
                _write_durable(directory / f"{CODE_INDEX}.{stamp}-recovered.retired", current)
            os.replace(path, directory_key(directory))
            done.append(f"completed an interrupted rotation: {path.name} is now {CODE_INDEX}")
        else:
            path.unlink()
            done.append(f"removed {path.name} left by a rotation that did not commit")
    if done:
        _fsync_dir(directory)
    return done
