"""Encryption of the code index and the blind index (§11.3.4.6 a 1, §10.2 f–h).

- Each identity is JSON, encrypted with XChaCha20-Poly1305 (IETF, libsodium via PyNaCl) under the
  code-index key with a fresh random 24-byte nonce. The associated data binds the ciphertext to
  its subject code and key id (``edc-code-index-v1|<code>|<key id>``): a ciphertext moved to
  another row does not decrypt.
- The key id is a fingerprint of the key (BLAKE2b-64 with a personalisation string), stored on
  every row so that after a rotation one can tell which key encrypted which row. It reveals
  nothing about the key.
- The blind index is HMAC-SHA256 under the blind-index key over
  ``edc-blind-index-v1|resident_id|<normalised ID number>``: equal for the same person, useless
  without the key. Its key also has an id, stored on each row, so that a wrong blind-index key
  is noticed instead of silently missing duplicates.

Keys never reach the database; they come from the key directory and are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)

from studies.kernel.i18n import _
from studies.subjects.errors import CodeIndexKeyError
from studies.subjects.identity import Identity

AAD_TAG = "edc-code-index-v1"
BLIND_TAG = b"edc-blind-index-v1|resident_id|"


def key_id(key: bytes) -> str:
    return hashlib.blake2b(key, digest_size=8, person=b"edc-key-id-v1").hexdigest()


@dataclass(frozen=True)
class CodeIndexKeys:
    """The keys the code index is used with: the current encryption key, older keys kept for
    rows not yet re-encrypted (retired or pending after an interrupted rotation), and the
    blind-index key."""

    current: bytes
    blind: bytes
    older: tuple[bytes, ...] = field(default=())

    def __post_init__(self) -> None:
        for k in (self.current, self.blind, *self.older):
            if len(k) != 32:
                raise ValueError("code-index keys are 32 bytes")

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    @property
    def blind_id(self) -> str:
        return key_id(self.blind)

    def by_id(self) -> dict[str, bytes]:
        out = {key_id(k): k for k in self.older}
        out[self.current_id] = self.current
        return out

    def require_all(self, used: Iterable[str]) -> None:
        """Refuse (before anything is decrypted or written) if a key id used by the index is
        not among these keys."""
        have = self.by_id()
        missing = sorted(set(used) - set(have))
        if missing:
            raise CodeIndexKeyError(
                _("the key directory lacks the code-index key {missing} that encrypted entries of "
                  "the index; restore code_index.key (or its retired copy) from the key backup")
                .format(missing=', '.join(missing)),
                clause="§11.3.4.6 a")


def _aad(code: str, kid: str) -> bytes:
    return f"{AAD_TAG}|{code}|{kid}".encode()


def encrypt_identity(identity: Identity, *, code: str, key: bytes) -> tuple[str, bytes, bytes]:
    """Return (key id, nonce, ciphertext)."""
    kid = key_id(key)
    nonce = nacl.utils.random(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    plain = json.dumps(identity.to_json(), ensure_ascii=False, sort_keys=True).encode()
    ct = crypto_aead_xchacha20poly1305_ietf_encrypt(plain, _aad(code, kid), nonce, key)
    return kid, nonce, ct


def decrypt_identity(*, code: str, kid: str, nonce: bytes, ciphertext: bytes,
                     keys: CodeIndexKeys) -> Identity:
    key = keys.by_id().get(kid)
    if key is None:
        keys.require_all([kid])
    assert key is not None
    try:
        plain = crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, _aad(code, kid), nonce,
                                                           key)
    except nacl.exceptions.CryptoError as exc:
        raise CodeIndexKeyError(
            _("the code-index entry of {code} does not decrypt (wrong key or altered "
              "entry)").format(code=code), clause="§11.3.4.6 a") from exc
    return Identity.from_json(json.loads(plain))


def blind_index(resident_id: str, *, key: bytes) -> bytes:
    """HMAC-SHA256 of a *normalised, validated* ID number."""
    return hmac.new(key, BLIND_TAG + resident_id.encode(), hashlib.sha256).digest()
