"""The witness (c2sp.org/tlog-witness): it cosigns a checkpoint only after a consistency proof
from the one it holds, and refuses anything that does not extend it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from sqlalchemy.orm import Session

from audit_trail import merkle, note
from audit_trail.service import Change, Ledger
from audit_trail.witness import Witness, WitnessError, encode_request, submission

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def fill(session: Session, ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append(session, actor="u", action="form.save", entity_type="form",
                      entity_id=f"F{i}", changes=[Change("x", None, i)])


@pytest.fixture
def witness(tmp_path: Path, ledger: Ledger) -> Witness:
    return Witness.create(tmp_path / "w", name="ethics.example/witness",
                          log_vkeys=[ledger.signer.vkey])


def test_cosigns_from_zero_then_only_with_a_valid_consistency_proof(
        session: Session, ledger: Ledger, witness: Witness) -> None:
    fill(session, ledger, 3)
    cp3 = ledger.checkpoint(session, reason="t")
    line = witness.add_checkpoint(submission(session, old_size=0, checkpoint=cp3), now=NOW)
    # A C2SP cosignature: key id (algorithm 0x04), big-endian timestamp, Ed25519 signature
    # over "cosignature/v1\ntime <ts>\n" and the checkpoint body.
    raw = base64.b64decode(line.split(" ")[2])
    assert line.startswith("\u2014 ethics.example/witness ") and len(raw) == 4 + 8 + 64
    assert int.from_bytes(raw[4:12], "big") == int(NOW.timestamp())
    assert note.open_cosignature(cp3.note + line, witness.vkey) == int(NOW.timestamp())
    body = cp3.note.partition("\n\n")[0] + "\n"
    witness.key.verify_key.verify(
        f"cosignature/v1\ntime {int(NOW.timestamp())}\n{body}".encode(), raw[12:])
    assert witness.latest(ledger.signer.origin).startswith(body)

    fill(session, ledger, 10)
    cp13 = ledger.checkpoint(session, reason="t")
    witness.add_checkpoint(submission(session, old_size=3, checkpoint=cp13), now=NOW)
    held = witness.latest(ledger.signer.origin)
    assert held is not None and held.split("\n")[1] == "13"
    assert [t.split("\n")[1] for t in witness.cosigned(ledger.signer.origin)] == ["3", "13"]


def test_refuses_what_does_not_extend_what_it_holds(
        session: Session, ledger: Ledger, witness: Witness) -> None:
    fill(session, ledger, 5)
    cp5 = ledger.checkpoint(session, reason="t")
    witness.add_checkpoint(submission(session, old_size=0, checkpoint=cp5), now=NOW)
    origin, key = ledger.signer.origin, ledger.signer.key

    # A rewritten log: size 8 signed by the log's own key, but not an extension of size 5.
    forged = note.sign_checkpoint(note.Checkpoint(origin, 8, b"\x07" * 32), origin, key)
    fill(session, ledger, 3)
    honest = submission(session, old_size=5, checkpoint=ledger.checkpoint(session, reason="t"))
    proof = honest.decode().partition("\n\n")[0].split("\n")[1:]
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(encode_request(5, [base64.b64decode(p) for p in proof], forged))
    assert exc.value.status == 422 and "does not extend size 5" in exc.value.message

    # Going back (a rollback): the witness holds 5 and says so.
    small = note.sign_checkpoint(note.Checkpoint(origin, 2, b"\x01" * 32), origin, key)
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(encode_request(0, [], small))
    assert exc.value.status == 409 and exc.value.size == 5
    # The same size with another root: a fork.
    fork5 = note.sign_checkpoint(note.Checkpoint(origin, 5, b"\x02" * 32), origin, key)
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(encode_request(5, [], fork5))
    assert exc.value.status == 409 and "forked" in exc.value.message
    # Not signed by the log's key; an unknown log; old size beyond the checkpoint.
    other = SigningKey.generate()
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(encode_request(5, [], note.sign_checkpoint(
            note.Checkpoint(origin, 9, b"\x03" * 32), origin, other)))
    assert exc.value.status == 403
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(encode_request(0, [], note.sign_checkpoint(
            note.Checkpoint("elsewhere/log", 1, b"\x03" * 32), "elsewhere/log", other)))
    assert exc.value.status == 404
    with pytest.raises(WitnessError) as exc:
        witness.add_checkpoint(encode_request(9, [], honest.decode().partition("\n\n")[2]))
    assert exc.value.status == 400
    # Nothing was cosigned by any of these; each refusal is kept as evidence.
    assert witness.latest(origin).split("\n")[1] == "5"  # type: ignore[union-attr]
    refused = (witness._log_dir(origin) / "refused.log").read_text().splitlines()
    assert [json.loads(r)["status"] for r in refused] == [422, 409, 409]


def test_streamed_consistency_proof_is_the_rfc_9162_proof() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(37)]
    for m in range(1, 38):
        assert merkle.consistency_proof_by(
            m, 37, lambda lo, hi: merkle.root_of(leaves[lo:hi])) == \
            merkle.consistency_proof(m, leaves)


def test_witness_key_file_must_be_private(tmp_path: Path, ledger: Ledger) -> None:
    w = Witness.create(tmp_path / "w", name="w.example/1", log_vkeys=[ledger.signer.vkey])
    (w.directory / "witness.key").chmod(0o644)
    with pytest.raises(WitnessError, match="readable by others"):
        Witness(w.directory)
