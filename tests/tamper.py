"""What an attacker with direct SQL access (and perhaps the signing key) can do to the ledger:
drop the triggers, then rewrite, truncate or re-sign behind the application's back."""

from __future__ import annotations

from sqlalchemy import Connection, select, text
from triggers_util import drop_ledger_triggers

from audit_trail import merkle, note
from audit_trail.service import (
    CHECKPOINT_TABLE,
    ENTRY_TABLE,
    HASHED_FIELDS,
    CheckpointSigner,
    encode_entry,
)


def rewrite_consistently(conn: Connection, *, seq: int, actor: str,
                         signer: CheckpointSigner | None = None) -> None:
    """Change entry ``seq``'s actor and recompute every later prev/leaf hash and the head; with
    ``signer`` (a stolen key) also rebuild and re-sign every checkpoint."""
    drop_ledger_triggers(conn)
    conn.execute(text("UPDATE ledger_entry SET actor = :a WHERE seq = :s"), {"a": actor, "s": seq})
    rows = conn.execute(select(*(ENTRY_TABLE.c[n] for n in HASHED_FIELDS))
                        .order_by(ENTRY_TABLE.c.seq)).all()
    prev = b"\x00" * 32
    frontier = merkle.Frontier()
    frontiers = {}
    for row in rows:
        values = list(row)
        values[1] = prev
        leaf = merkle.leaf_hash(encode_entry(values))
        if row.seq >= seq:
            conn.execute(text("UPDATE ledger_entry SET prev_hash = :p, leaf_hash = :l "
                              "WHERE seq = :s"), {"p": prev, "l": leaf, "s": row.seq})
        prev = leaf
        frontier.append(leaf)
        frontiers[row.seq] = (frontier.root(), frontier.to_bytes())
    conn.execute(text("UPDATE ledger_head SET hash = :h"), {"h": prev})
    if signer is not None:
        for size in conn.execute(select(CHECKPOINT_TABLE.c.tree_size)).scalars().all():
            root, packed = frontiers[size]
            signed = note.sign_checkpoint(note.Checkpoint(signer.origin, size, root),
                                          signer.origin, signer.key)
            conn.execute(text("UPDATE ledger_checkpoint SET root_hash = :r, frontier = :f, "
                              "note = :n WHERE tree_size = :s"),
                         {"r": root, "f": packed, "n": signed, "s": size})


def truncate(conn: Connection, *, keep: int) -> None:
    """Delete every entry after ``keep`` with the checkpoints that cover them, and move the
    head back: nothing inside the database is left to notice."""
    drop_ledger_triggers(conn)
    conn.execute(text("DELETE FROM ledger_entry WHERE seq > :k"), {"k": keep})
    conn.execute(text("DELETE FROM ledger_checkpoint WHERE tree_size > :k"), {"k": keep})
    last = conn.execute(text("SELECT leaf_hash FROM ledger_entry WHERE seq = :k"),
                        {"k": keep}).scalar_one()
    conn.execute(text("UPDATE ledger_head SET seq = :k, hash = :h"), {"k": keep, "h": last})
