"""Proof documents for outside auditors: build them from the ledger, check them offline.

A proof is a JSON document carrying the signed checkpoint(s) it refers to, so that checking needs
only the proof and the log's verifier key. Formats are described in ``docs/audit.md``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.orm import Session

from audit_trail import merkle, note
from audit_trail.errors import InvalidInput
from audit_trail.service import checkpoint_note, entry_bytes, leaf_hashes

INCLUSION = "edc-inclusion-proof-v1"
CONSISTENCY = "edc-consistency-proof-v1"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(s), validate=True)
    except ValueError as exc:
        raise merkle.ProofError(f"{what} is not base64") from exc


def inclusion(session: Session, *, seq: int, size: int) -> dict[str, Any]:
    if not 1 <= seq <= size:
        raise InvalidInput(f"entry {seq} is not inside a tree of size {size}", field="seq")
    cp = checkpoint_note(session, size)
    leaves = leaf_hashes(session, size)
    data, redacted = entry_bytes(session, seq)
    doc: dict[str, Any] = {
        "format": INCLUSION,
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": size,
        "leaf_hash": _b64(leaves[seq - 1]),
        "hashes": [_b64(h) for h in merkle.inclusion_proof(seq - 1, leaves)],
        "checkpoint": cp,
    }
    if not redacted:
        doc["entry"] = _b64(data)
    return doc


def consistency(session: Session, *, first: int, second: int) -> dict[str, Any]:
    if not 0 < first <= second:
        raise InvalidInput("sizes must satisfy 0 < from <= to", field="from")
    cp1 = checkpoint_note(session, first)
    cp2 = checkpoint_note(session, second)
    leaves = leaf_hashes(session, second)
    return {
        "format": CONSISTENCY,
        "first": first,
        "second": second,
        "hashes": [_b64(h) for h in merkle.consistency_proof(first, leaves)],
        "first_checkpoint": cp1,
        "second_checkpoint": cp2,
    }


def check(doc: dict[str, Any], *, vkey: str) -> str:
    """Verify a proof document using only the verifier key; return a one-line verdict.

    Raises ``merkle.ProofError`` or ``note.NoteError`` when anything does not hold.
    """
    fmt = doc.get("format")
    try:
        if fmt == INCLUSION:
            cp = note.open_checkpoint(doc["checkpoint"], vkey)
            size, index = int(doc["tree_size"]), int(doc["leaf_index"])
            if cp.size != size:
                raise merkle.ProofError("proof names a tree size its checkpoint does not sign")
            leaf = _unb64(doc["leaf_hash"], "leaf_hash")
            if "entry" in doc and merkle.leaf_hash(_unb64(doc["entry"], "entry")) != leaf:
                raise merkle.ProofError("entry does not hash to the proof's leaf hash")
            hashes = [_unb64(h, "hashes") for h in doc["hashes"]]
            merkle.verify_inclusion(index, size, leaf, hashes, cp.root)
            what = "entry" if "entry" in doc else "redacted entry (leaf hash only)"
            return (f"inclusion proof OK: {what} {index + 1} is in the log {cp.origin!r} "
                    f"of size {size}")
        if fmt == CONSISTENCY:
            cp1 = note.open_checkpoint(doc["first_checkpoint"], vkey)
            cp2 = note.open_checkpoint(doc["second_checkpoint"], vkey)
            first, second = int(doc["first"]), int(doc["second"])
            if cp1.size != first or cp2.size != second:
                raise merkle.ProofError("proof sizes do not match its checkpoints")
            hashes = [_unb64(h, "hashes") for h in doc["hashes"]]
            merkle.verify_consistency(first, second, cp1.root, cp2.root, hashes)
            return (f"consistency proof OK: the log {cp2.origin!r} at size {second} extends "
                    f"its state at size {first} without rewriting it")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, (merkle.ProofError, note.NoteError)):
            raise
        raise merkle.ProofError(f"proof document is malformed: {exc}") from exc
    raise merkle.ProofError(f"unknown proof format {fmt!r}")


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
