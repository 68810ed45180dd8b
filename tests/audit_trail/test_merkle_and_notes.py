"""RFC 9162 proofs and C2SP signed notes, checked against a reference and a published vector."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from audit_trail import merkle, note


def reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written recursively as in the RFC."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return merkle.node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(70)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 64, 70])
def test_frontier_root_equals_rfc9162_tree_head(n: int) -> None:
    assert merkle.root_of(LEAVES[:n]) == reference_mth(LEAVES[:n])


def test_frontier_resumes_from_its_packed_bytes() -> None:
    f = merkle.Frontier()
    for leaf in LEAVES[:37]:
        f.append(leaf)
    g = merkle.Frontier.from_bytes(37, f.to_bytes())
    for leaf in LEAVES[37:]:
        f.append(leaf)
        g.append(leaf)
    assert g.root() == f.root() == reference_mth(LEAVES)


def test_every_inclusion_proof_verifies_up_to_40_leaves() -> None:
    for n in range(1, 41):
        root = reference_mth(LEAVES[:n])
        for i in range(n):
            proof = merkle.inclusion_proof(i, LEAVES[:n])
            merkle.verify_inclusion(i, n, LEAVES[i], proof, root)


def test_every_consistency_proof_verifies_up_to_33_leaves() -> None:
    for n in range(1, 34):
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, LEAVES[:n])
            merkle.verify_consistency(m, n, reference_mth(LEAVES[:m]),
                                      reference_mth(LEAVES[:n]), proof)


@given(st.integers(2, 60), st.data())
def test_a_proof_for_another_leaf_or_root_is_refused(n: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(i, LEAVES[:n])
    root = reference_mth(LEAVES[:n])
    other = LEAVES[(i + 1) % n]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(i, n, other, proof, root)
    if proof:
        bad = list(proof)
        bad[0] = bytes(32)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(i, n, LEAVES[i], bad, root)


@given(st.integers(2, 60), st.data())
def test_consistency_with_a_rewritten_prefix_is_refused(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(1, n - 1))
    proof = merkle.consistency_proof(m, LEAVES[:n])
    rewritten = [merkle.leaf_hash(b"forged")] + LEAVES[1:m]
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(m, n, reference_mth(rewritten), reference_mth(LEAVES[:n]),
                                  proof)


# golang.org/x/mod/sumdb/note's published example: our notes must be byte-identical.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"  # noqa: E501


def test_signed_note_matches_the_go_reference_vector_byte_for_byte() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    key = SigningKey(seed)
    assert note.verifier_key("PeterNeumann", bytes(key.verify_key)) == GO_VKEY
    assert note.sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    assert note.open_note(GO_NOTE, GO_VKEY) == GO_TEXT


def test_a_changed_note_or_a_foreign_key_is_refused() -> None:
    with pytest.raises(note.NoteError, match="does not verify"):
        note.open_note(GO_NOTE.replace("cryptography", "cryptographY"), GO_VKEY)
    other = SigningKey.generate()
    with pytest.raises(note.NoteError, match="no signature by this key"):
        note.open_note(GO_NOTE, note.verifier_key("PeterNeumann", bytes(other.verify_key)))


def test_checkpoint_round_trip() -> None:
    key = SigningKey.generate()
    cp = note.Checkpoint("hospital.example/ledger", 1234, LEAVES[0])
    signed = note.sign_checkpoint(cp, cp.origin, key)
    assert signed.splitlines()[:3] == ["hospital.example/ledger", "1234",
                                       base64.b64encode(LEAVES[0]).decode()]
    assert note.open_checkpoint(signed, note.verifier_key(cp.origin, bytes(key.verify_key))) == cp
