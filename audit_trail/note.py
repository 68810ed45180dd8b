"""C2SP signed notes and tlog checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).

A checkpoint body is three lines: the log's origin, the tree size in decimal, and the root hash
in base64. It is followed by a blank line and one signature line per signer:
``— <key name> <base64(4-byte key id || Ed25519 signature)>``. The key id is the first four
bytes of ``SHA-256(key name || 0x0A || 0x01 || public key)``; a verifier key is written
``<name>+<key id hex>+<base64(0x01 || public key)>``. These are the formats Go's
``golang.org/x/mod/sumdb/note`` and the transparency-log ecosystem use.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

ALG_ED25519 = b"\x01"
# c2sp.org/tlog-cosignature: an Ed25519 cosignature (cosignature/v1) of a witness.
ALG_COSIGNATURE_V1 = b"\x04"
SIG_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note or checkpoint is malformed or its signature does not verify."""


def key_id(name: str, public_key: bytes, alg: bytes = ALG_ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + alg + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes, alg: bytes = ALG_ED25519) -> str:
    return (
        f"{name}+{key_id(name, public_key, alg).hex()}+"
        f"{base64.b64encode(alg + public_key).decode()}"
    )


def parse_verifier_key(vkey: str, alg: bytes = ALG_ED25519) -> tuple[str, VerifyKey]:
    try:
        name, kid_hex, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
    except ValueError as exc:
        raise NoteError("verifier key is not of the form name+keyid+base64") from exc
    if len(raw) != 33 or raw[:1] != alg:
        kind = "an Ed25519 cosigner (0x04)" if alg == ALG_COSIGNATURE_V1 else "an Ed25519"
        raise NoteError(f"verifier key is not {kind} key")
    if key_id(name, raw[1:], alg).hex() != kid_hex:
        raise NoteError("verifier key id does not match its name and key")
    return name, VerifyKey(raw[1:])


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def sign_note(text: str, name: str, key: SigningKey) -> str:
    """A signed note: ``text`` (ending in a newline), a blank line, one signature line."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("note text must end in a newline and contain no blank line")
    sig = key.sign(text.encode()).signature
    kid = key_id(name, bytes(key.verify_key))
    return f"{text}\n{SIG_PREFIX}{name} {base64.b64encode(kid + sig).decode()}\n"


def open_note(signed: str, vkey: str) -> str:
    """Verify ``signed`` with the verifier key ``vkey`` and return its text.

    Raises NoteError when the signature is missing or wrong.
    """
    name, verify_key = parse_verifier_key(vkey)
    text, sep, sigs = signed.partition("\n\n")
    if not sep:
        raise NoteError("note has no signature block")
    text += "\n"
    kid = key_id(name, bytes(verify_key))
    verified = False
    for line in sigs.splitlines():
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed signature line")
        try:
            signer, b64 = line[len(SIG_PREFIX) :].split(" ")
            raw = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise NoteError("malformed signature line") from exc
        if signer != name or raw[:4] != kid:
            continue
        try:
            verify_key.verify(text.encode(), raw[4:])
        except BadSignatureError as exc:
            raise NoteError("checkpoint signature does not verify") from exc
        verified = True
    if not verified:
        raise NoteError("checkpoint carries no signature by this key")
    return text


def sign_checkpoint(cp: Checkpoint, name: str, key: SigningKey) -> str:
    """The signed note text of ``cp``, signed by ``key`` under the key name ``name``."""
    return sign_note(cp.body(), name, key)


def open_checkpoint(signed: str, vkey: str) -> Checkpoint:
    """Verify a checkpoint note with ``vkey`` and parse its body (origin, size, root)."""
    lines = open_note(signed, vkey).split("\n")
    try:
        origin, size_s, root_b64 = lines[0], lines[1], lines[2]
        size = int(size_s)
        root = base64.b64decode(root_b64, validate=True)
    except (IndexError, ValueError) as exc:
        raise NoteError("checkpoint body is malformed") from exc
    if str(size) != size_s or size < 0 or len(root) != 32:
        raise NoteError("checkpoint body is malformed")
    return Checkpoint(origin, size, root)


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(body: str, name: str, key: SigningKey, timestamp: int) -> str:
    """A c2sp.org/tlog-cosignature v1 signature line over the checkpoint ``body``:
    ``— <name> base64(key id || u64 big-endian timestamp || Ed25519 signature)``, the key id
    taken with the algorithm byte 0x04, the signature over ``cosignature/v1``, ``time <ts>``
    and the body."""
    sig = key.sign(_cosigned_message(body, timestamp)).signature
    kid = key_id(name, bytes(key.verify_key), ALG_COSIGNATURE_V1)
    raw = kid + timestamp.to_bytes(8, "big") + sig
    return f"{SIG_PREFIX}{name} {base64.b64encode(raw).decode()}\n"


def open_cosignature(signed: str, witness_vkey: str) -> int:
    """Verify the cosignature of the witness ``witness_vkey`` on the signed note ``signed``
    and return its timestamp (POSIX seconds). Raises NoteError when the witness has not
    cosigned it, or the cosignature does not verify."""
    name, verify_key = parse_verifier_key(witness_vkey, ALG_COSIGNATURE_V1)
    text, sep, sigs = signed.partition("\n\n")
    if not sep:
        raise NoteError("note has no signature block")
    body = text + "\n"
    kid = key_id(name, bytes(verify_key), ALG_COSIGNATURE_V1)
    for line in sigs.splitlines():
        if not line.startswith(SIG_PREFIX):
            raise NoteError("malformed signature line")
        signer, _, b64 = line[len(SIG_PREFIX):].partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise NoteError("malformed signature line") from exc
        if signer != name or raw[:4] != kid or len(raw) != 4 + 8 + 64:
            continue
        timestamp = int.from_bytes(raw[4:12], "big")
        try:
            verify_key.verify(_cosigned_message(body, timestamp), raw[12:])
        except BadSignatureError as exc:
            raise NoteError(f"the cosignature of witness {name} does not verify") from exc
        return timestamp
    raise NoteError(f"the checkpoint carries no cosignature of witness {name}")
