"""The ledger: append-only at the database, tamper evidence, signed checkpoints, redaction."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from audit_trail import merkle, note, proofs
from audit_trail.errors import InvalidInput, LedgerIntegrityError
from audit_trail.models import LedgerEntry
from audit_trail.service import (
    ENTRY_TABLE,
    HASHED_FIELDS,
    HEAD_TABLE,
    Change,
    Ledger,
    encode_entry,
    leaf_input_sql,
    verify,
)
from audit_trail.triggers import drop_statements


def fill(session: Session, ledger: Ledger, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        ledger.append(session, actor=f"user{i % 3}", action="form.save", entity_type="form",
                      entity_id=f"F{i}", study="S1", subject=f"S01-{i:05d}", version=i,
                      reason="initial entry", changes=[Change("weight", None, 60 + i)])


def sql(session: Session, stmt: str, **params: object) -> None:
    session.execute(text(stmt), params)


def drop_triggers(session: Session) -> None:
    for stmt in drop_statements(session.get_bind().dialect.name):
        sql(session, stmt)


def test_appended_entries_form_a_verified_chain(session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 25)
    report = verify(session, vkey=ledger.signer.vkey)
    assert report.entries == 25
    rows = session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars().all()
    assert [r.seq for r in rows] == list(range(1, 26))
    assert rows[0].prev_hash == b"\x00" * 32 and rows[1].prev_hash == rows[0].leaf_hash
    assert rows[0].changes == '[{"after":60,"before":null,"field":"weight"}]'


@pytest.mark.parametrize("stmt", [
    "UPDATE ledger_entry SET actor = 'mallory' WHERE seq = 2",
    "UPDATE ledger_entry SET redacted = true WHERE seq = 2",
    "DELETE FROM ledger_entry WHERE seq = 2",
    "DELETE FROM ledger_checkpoint",
    "UPDATE ledger_checkpoint SET reason = 'x'",
])
def test_update_and_delete_on_ledger_rows_are_refused_by_the_database(
        session: Session, ledger: Ledger, stmt: str) -> None:
    fill(session, ledger, 3)
    ledger.checkpoint(session, reason="test")
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            sql(session, stmt)
    assert verify(session, vkey=ledger.signer.vkey).entries == 3


def test_one_changed_byte_is_named_by_verify(session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 30)
    drop_triggers(session)  # an attacker with direct SQL access
    sql(session, "UPDATE ledger_entry SET reason = 'initial entrz' WHERE seq = 17")
    with pytest.raises(LedgerIntegrityError) as err:
        verify(session, vkey=ledger.signer.vkey)
    assert err.value.seq == 17
    assert "entry 17" in str(err.value) and "altered" in str(err.value)


def test_a_deleted_entry_is_named_by_verify(session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 10)
    drop_triggers(session)
    sql(session, "DELETE FROM ledger_entry WHERE seq = 4")
    with pytest.raises(LedgerIntegrityError, match="entry 4 is missing"):
        verify(session, vkey=ledger.signer.vkey)


def rewrite_consistently(session: Session, from_seq: int) -> None:
    """Alter entry ``from_seq`` and recompute every leaf and link after it, and the head."""
    drop_triggers(session)
    rows = session.execute(
        select(ENTRY_TABLE).order_by(ENTRY_TABLE.c.seq)).mappings().all()
    prev = bytes(rows[from_seq - 2]["leaf_hash"]) if from_seq > 1 else b"\x00" * 32
    for r in rows[from_seq - 1:]:
        values = [r[f] for f in HASHED_FIELDS]
        values[HASHED_FIELDS.index("prev_hash")] = prev
        if r["seq"] == from_seq:
            values[HASHED_FIELDS.index("actor")] = "mallory"
        leaf = merkle.leaf_hash(encode_entry(values))
        session.execute(update(ENTRY_TABLE).where(ENTRY_TABLE.c.seq == r["seq"]).values(
            actor=values[HASHED_FIELDS.index("actor")], leaf_hash=leaf, prev_hash=prev))
        prev = leaf
    session.execute(update(HEAD_TABLE).values(hash=prev))


def test_consistent_rewrite_after_a_checkpoint_is_caught_by_its_signature(
        session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 20)
    ledger.checkpoint(session, reason="lock")
    fill(session, ledger, 5, start=20)
    rewrite_consistently(session, 7)
    with pytest.raises(LedgerIntegrityError, match="history was rewritten") as err:
        verify(session, vkey=ledger.signer.vkey)
    assert err.value.seq == 20
    # The attacker also re-signs the checkpoint with a key of their own: the signature fails.
    root = merkle.root_of([bytes(h) for h in session.execute(
        select(ENTRY_TABLE.c.leaf_hash).where(ENTRY_TABLE.c.seq <= 20)
        .order_by(ENTRY_TABLE.c.seq)).scalars()])
    forged = note.sign_checkpoint(note.Checkpoint(ledger.signer.origin, 20, root),
                                  ledger.signer.origin, SigningKey.generate())
    sql(session, "UPDATE ledger_checkpoint SET root_hash = :r, note = :n WHERE tree_size = 20",
        r=root, n=forged)
    with pytest.raises(LedgerIntegrityError, match="checkpoint at size 20") as err:
        verify(session, vkey=ledger.signer.vkey)
    assert "signature" in str(err.value)


def test_checkpoints_are_written_every_n_entries(session: Session, ledger: Ledger) -> None:
    every = Ledger(signer=ledger.signer, checkpoint_every=10)
    fill(session, every, 35)
    report = verify(session, vkey=ledger.signer.vkey)
    assert report.checkpoints == 3
    sizes = session.execute(text("SELECT tree_size FROM ledger_checkpoint ORDER BY 1")).scalars()
    assert list(sizes) == [10, 20, 30]


def test_redaction_scrubs_the_payload_and_the_ledger_still_verifies(
        session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 3)
    ledger.append(session, actor="inv", action="form.save", entity_type="form", entity_id="F9",
                  reason="typo", changes=[Change("comment", None, "张三 110101199003074578")])
    ledger.checkpoint(session, reason="test")
    fill(session, ledger, 2, start=10)
    entry = ledger.redact(session, seq=4, actor="custodian", reason="identity typed in comment")
    row = session.get(LedgerEntry, 4)
    assert row is not None and row.redacted and "110101" not in (row.changes or "")
    assert row.actor == "inv"  # who and what stay visible
    red = session.get(LedgerEntry, entry.seq)
    assert red is not None and red.action == "ledger.redact" and red.entity_id == "4"
    assert red.reason == "identity typed in comment"
    report = verify(session, vkey=ledger.signer.vkey)
    assert report.redacted == 1 and report.entries == 7
    doc = proofs.inclusion(session, seq=4, size=4)
    assert "entry" not in doc
    assert "redacted" in proofs.check(doc, vkey=ledger.signer.vkey)
    with pytest.raises(InvalidInput, match="already redacted"):
        ledger.redact(session, seq=4, actor="custodian", reason="again")


def test_a_redaction_without_its_ledger_entry_is_refused_by_the_database(
        session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 3)
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            sql(session, "UPDATE ledger_entry SET redacted = true, changes = 'x' WHERE seq = 2")


def test_redaction_needs_a_reason(session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 1)
    with pytest.raises(InvalidInput) as err:
        ledger.redact(session, seq=1, actor="custodian", reason="  ")
    assert err.value.field == "reason"


def test_inclusion_and_consistency_proofs_check_with_only_the_verifier_key(
        session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 13)
    ledger.checkpoint(session, reason="a")
    fill(session, ledger, 8, start=13)
    ledger.checkpoint(session, reason="b")
    vkey = ledger.signer.vkey
    for seq in (1, 7, 13):
        doc = proofs.inclusion(session, seq=seq, size=21)
        assert proofs.check(doc, vkey=vkey).startswith("inclusion proof OK")
    doc = proofs.consistency(session, first=13, second=21)
    assert proofs.check(doc, vkey=vkey).startswith("consistency proof OK")
    tampered = proofs.inclusion(session, seq=7, size=21)
    tampered["entry"] = tampered["entry"][:-4] + "AAAA"
    with pytest.raises(merkle.ProofError, match="does not hash"):
        proofs.check(tampered, vkey=vkey)


TRICKY = ["", "患者 张三 / Patient", "emoji 🩺 and é (e + ◌́: e\u0301)", "it's \"quoted\"",
          "%s %d %% printf-like", "back\\slash", "line\nbreak\ttab", "x" * 5000,
          "[{\"after\":\"中文\",\"before\":null,\"field\":\"诊断\"}]"]


def test_the_database_encodes_entries_exactly_as_python_does(
        session: Session, ledger: Ledger) -> None:
    """verify's fast path (the encoding computed in SQL) agrees with encode_entry byte for
    byte on non-ASCII, quotes, printf-like and long values and on NULLs."""
    for n, value in enumerate(TRICKY):
        short = value[:90]  # the columns' limits; reason and changes take the long one
        ledger.append(session, actor=short or "a", action="test.encode", entity_type="t",
                      entity_id=short or "e", study=short, subject=None if n % 2 else short,
                      version=None if n % 3 else n * 1_000_000_007, reason=value,
                      client="10.0.0.1" if n % 2 else None,
                      changes=[Change(value, None, value)])
    dialect = session.get_bind().dialect.name
    rows = session.execute(select(*(ENTRY_TABLE.c[f] for f in HASHED_FIELDS),
                                  leaf_input_sql(dialect)).order_by(ENTRY_TABLE.c.seq)).all()
    assert len(rows) == len(TRICKY)
    for row in rows:
        assert row[-1] == b"\x00" + encode_entry(row[:-1]), row[0]
    assert verify(session, vkey=ledger.signer.vkey).entries == len(TRICKY)


def test_where_the_sql_encoder_disagrees_python_decides(
        session: Session, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """No false alarm when the fast path is wrong for a row (here: for every row), and an
    altered entry is still named."""
    from sqlalchemy import literal_column

    import audit_trail.service as service

    fill(session, ledger, 12)
    monkeypatch.setattr(service, "leaf_input_sql",
                        lambda dialect: literal_column("NULL").label("leaf_input"))
    assert verify(session, vkey=ledger.signer.vkey).entries == 12
    drop_triggers(session)
    sql(session, "UPDATE ledger_entry SET reason = 'initial entrz' WHERE seq = 9")
    with pytest.raises(LedgerIntegrityError) as err:
        verify(session, vkey=ledger.signer.vkey)
    assert err.value.seq == 9


def test_appends_across_savepoints_keep_one_chain(session: Session, ledger: Ledger) -> None:
    """Entries appended in a released savepoint stay in the chain, those of a rolled-back one
    leave no gap — also on PostgreSQL, where the head row moves only at commit."""
    fill(session, ledger, 2)
    with session.begin_nested():
        fill(session, ledger, 2, start=2)
    with pytest.raises(RuntimeError), session.begin_nested():
        fill(session, ledger, 3, start=4)
        raise RuntimeError("rolled back")
    fill(session, ledger, 2, start=7)
    assert verify(session, vkey=ledger.signer.vkey).entries == 6
    subjects = session.execute(select(LedgerEntry.subject).order_by(LedgerEntry.seq)).scalars()
    assert [s[-1] for s in subjects] == ["0", "1", "2", "3", "7", "8"]
