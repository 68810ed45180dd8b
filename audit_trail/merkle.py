"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and proof verification.

Pure functions over 32-byte SHA-256 hashes; no database. An auditor can re-implement every
function here from RFC 9162 §2.1 alone: leaves are ``SHA-256(0x00 || entry)``, interior nodes
``SHA-256(0x01 || left || right)``, the tree over ``n`` leaves splits at the largest power of two
smaller than ``n``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify, or its parameters are impossible."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of a growing tree: one hash per perfect subtree, left to right.

    The perfect subtrees of a tree of size ``n`` correspond to the set bits of ``n``, so the
    hashes alone (32 bytes each) are enough to resume; ``root()`` folds them into the RFC 9162
    tree head. Appending is amortised O(1).
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        self.size = size
        self.hashes = hashes if hashes is not None else []
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError("frontier does not match tree size")

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> Frontier:
        return cls(size, [packed[i : i + 32] for i in range(0, len(packed), 32)])

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def append(self, leaf: bytes) -> None:
        h = leaf
        size = self.size
        hashes = self.hashes
        # Each trailing set bit of the old size is a perfect subtree that merges with the new one.
        while size & 1:
            h = node_hash(hashes.pop(), h)
            size >>= 1
        hashes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r


def root_of(leaves: Sequence[bytes]) -> bytes:
    f = Frontier()
    for leaf in leaves:
        f.append(leaf)
    return f.root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 §2.1.3.1, over leaf hashes."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ProofError(f"leaf index {index} is outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(index, leaves[:k]) + [root_of(leaves[k:])]
    return inclusion_proof(index - k, leaves[k:]) + [root_of(leaves[:k])]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(first, D[n]) of RFC 9162 §2.1.4.1, over leaf hashes."""
    n = len(leaves)
    if not 0 < first <= n:
        raise ProofError(f"cannot prove size {first} consistent with size {n}")
    return _subproof(first, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_of(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root_of(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root_of(leaves[:k])]


def consistency_proof_by(first: int, size: int,
                         subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """PROOF(first, D[size]) like ``consistency_proof``, asking ``subtree(lo, hi)`` for the
    hash of leaves ``lo..hi-1`` instead of holding every leaf (the ledger streams them)."""
    if not 0 < first <= size:
        raise ProofError(f"cannot prove size {first} consistent with size {size}")

    def sub(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [subtree(lo, hi)]
        k = _split(n)
        if m <= k:
            return sub(m, lo, lo + k, complete) + [subtree(lo + k, hi)]
        return sub(m - k, lo + k, hi, False) + [subtree(lo, lo + k)]

    return sub(first, 0, size, True)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2; raises ProofError when the proof does not lead to ``root``."""
    if index >= size or index < 0:
        raise ProofError("leaf index is not inside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2; raises ProofError unless tree ``first`` is a prefix of ``second``."""
    if not 0 < first <= second:
        raise ProofError("sizes must satisfy 0 < first <= second")
    if first == second:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("equal sizes with different root hashes")
        return
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first tree is a complete subtree
        path.insert(0, first_root)
    if not path:
        raise ProofError("consistency proof is empty")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError("consistency proof does not reproduce the earlier root hash")
    if sr != second_root:
        raise ProofError("consistency proof does not reproduce the later root hash")
