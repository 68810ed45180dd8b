"""Appending to, checkpointing, redacting, verifying and proving the ledger.

Every function takes the SQLAlchemy session (or connection) it works in; appending happens in
the caller's transaction, so a data change and its ledger entry commit together or not at all.
Writers serialise on the single ``ledger_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite the engine begins every transaction with ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey
from sqlalchemy import ColumnElement, insert, literal_column, select, text, update
from sqlalchemy.orm import Session

from audit_trail import merkle, note
from audit_trail.base import execute_core
from audit_trail.errors import InvalidInput, LedgerIntegrityError, NotFound
from audit_trail.models import GENESIS_HASH, LedgerCheckpoint, LedgerEntry, LedgerHead

ENTRY_TABLE = LedgerEntry.__table__  # type: ignore[attr-defined]
HEAD_TABLE = LedgerHead.__table__  # type: ignore[attr-defined]
CHECKPOINT_TABLE = LedgerCheckpoint.__table__  # type: ignore[attr-defined]

ENCODING_TAG = b"edc-ledger-entry-v1\n"
# prev_hash (the predecessor's leaf hash) is hashed into every entry: the chain is part of the leaf.
HASHED_FIELDS = ("seq", "prev_hash", "ts", "actor", "action", "entity_type", "entity_id", "study",
                 "subject", "version", "outcome", "client", "reason", "changes")
_TAG = ENCODING_TAG.decode()
REDACTED = "[redacted]"
OUTCOMES = ("success", "denied", "failure")


def canonical_ts(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_entry(values: Sequence[Any]) -> bytes:
    """Canonical bytes of an entry: the tag, then each of HASHED_FIELDS in order, ``-`` for
    null, otherwise a netstring ``<byte length>:<UTF-8 bytes>,`` (integers in decimal, hashes in
    lower-case hex)."""
    out = [_TAG]
    append = out.append
    for v in values:
        cls = v.__class__
        if cls is str:
            append(f"{len(v) if v.isascii() else len(v.encode())}:{v},")
        elif v is None:
            append("-")
        else:
            text = v.hex() if cls is bytes else str(v)
            append(f"{len(text)}:{text},")
    return "".join(out).encode()


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class AppendedEntry:
    seq: int
    ts: str
    leaf_hash: bytes


@dataclass
class _HeadCache:
    """The head as this transaction last wrote it. While the transaction that locked the head is
    open nobody else can move it, so later appends in it skip re-reading the row."""

    txn: Any
    seq: int
    leaf: bytes


@dataclass
class CheckpointSigner:
    """The log's identity: origin line, key name and the Ed25519 key that signs checkpoints."""

    origin: str
    key: SigningKey

    @property
    def vkey(self) -> str:
        return note.verifier_key(self.origin, bytes(self.key.verify_key))


_LOCK_HEAD = (select(HEAD_TABLE.c.seq, HEAD_TABLE.c.hash).where(HEAD_TABLE.c.id == 1)
              .with_for_update())
_LAST_ENTRY = (select(ENTRY_TABLE.c.seq, ENTRY_TABLE.c.leaf_hash)
               .order_by(ENTRY_TABLE.c.seq.desc()).limit(1))


class Ledger:
    """Appends entries and writes signed checkpoints every ``checkpoint_every`` entries."""

    def __init__(self, *, signer: CheckpointSigner, checkpoint_every: int = 1000) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be positive")
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        # Set by every append (a CLI command signs a checkpoint at its end when it is set).
        self.appended = False

    def append(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        study: str | None = None,
        subject: str | None = None,
        version: int | None = None,
        outcome: str = "success",
        client: str | None = None,
        reason: str | None = None,
        changes: Iterable[Change] | None = None,
    ) -> AppendedEntry:
        """Append one entry inside the caller's transaction and return its sequence and hash."""
        if outcome not in OUTCOMES:
            raise InvalidInput(f"unknown outcome {outcome!r}", field="outcome")
        changes_json = None
        if changes is not None:
            changes_json = canonical_json(
                [{"field": c.field, "before": c.before, "after": c.after} for c in changes]
            )
        head = self._head(session)
        seq = head.seq + 1
        ts = canonical_ts(dt.datetime.now(dt.UTC))
        values = (seq, head.leaf, ts, actor, action, entity_type, entity_id, study, subject,
                  version, outcome, client, reason, changes_json)
        leaf = merkle.leaf_hash(encode_entry(values))
        row = dict(zip(HASHED_FIELDS, values, strict=True))
        row.update(redacted=False, leaf_hash=leaf)
        execute_core(session, insert(ENTRY_TABLE), row)  # a trigger moves ledger_head along
        head.seq, head.leaf = seq, leaf
        session.info["ledger_appended"] = session.get_transaction()
        self.appended = True
        if seq % self.checkpoint_every == 0:
            self._write_checkpoint(session, seq, "interval")
        return AppendedEntry(seq=seq, ts=ts, leaf_hash=leaf)

    @staticmethod
    def lock_head(session: Session) -> None:
        """Take the head's row lock now, as an append would: a caller serialises a check with
        every writer of the ledger (the lock check of ``studies.guards``)."""
        Ledger._head(session)

    @staticmethod
    def _head(session: Session) -> _HeadCache:
        """Lock and read the head, or reuse what this same (sub)transaction last wrote."""
        txn = session.get_nested_transaction() or session.get_transaction()
        cached = session.info.get("ledger_head")
        if isinstance(cached, _HeadCache) and cached.txn is txn and txn is not None:
            return cached
        row = execute_core(session, _LOCK_HEAD).one()
        seq, leaf = row.seq, bytes(row.hash)
        if session.info.get("ledger_appended") is session.get_transaction():
            # This transaction appended before (in a savepoint since released or rolled back):
            # on PostgreSQL the head row moves only at commit, so its own newest entry is the head.
            last = execute_core(session, _LAST_ENTRY).first()
            if last is not None and last.seq > seq:
                seq, leaf = last.seq, bytes(last.leaf_hash)
        head = _HeadCache(txn=txn, seq=seq, leaf=leaf)
        session.info["ledger_head"] = head
        return head

    def checkpoint(self, session: Session, *, reason: str) -> LedgerCheckpoint:
        """Sign the current tree head (idempotent: an existing checkpoint of this size is kept)."""
        head = self._head(session)
        existing = session.get(LedgerCheckpoint, head.seq)
        if existing is not None:
            return existing
        self._write_checkpoint(session, head.seq, reason)
        cp = session.get(LedgerCheckpoint, head.seq)
        assert cp is not None
        return cp

    def _write_checkpoint(self, session: Session, size: int, reason: str) -> None:
        frontier = frontier_at(session, size)
        root = frontier.root()
        text = note.sign_checkpoint(
            note.Checkpoint(self.signer.origin, size, root), self.signer.origin, self.signer.key
        )
        session.execute(
            insert(CHECKPOINT_TABLE).values(
                tree_size=size, root_hash=root, frontier=frontier.to_bytes(), note=text,
                reason=reason, created_at=dt.datetime.now(dt.UTC),
            )
        )

    def redact(self, session: Session, *, seq: int, actor: str, reason: str,
               client: str | None = None) -> AppendedEntry:
        """Replace the reason and changes of entry ``seq`` with a redaction marker.

        For identity typed into the wrong field by mistake (ICH E6(R3) 4.2.2 b). Keeps: the
        entry's sequence, actor, action, entity, time and every hash, so the chain and the tree
        still verify. Scrubs: its ``reason`` and ``changes``. Appends a ``ledger.redact`` entry
        naming who, why and which entry. Not undoable; redacting twice is refused.
        """
        if not reason or not reason.strip():
            raise InvalidInput("a redaction needs a reason / 删除需说明理由", field="reason")
        target = session.execute(
            select(ENTRY_TABLE.c.seq, ENTRY_TABLE.c.redacted).where(ENTRY_TABLE.c.seq == seq)
        ).one_or_none()
        if target is None:
            raise NotFound(f"ledger entry {seq} does not exist / 审计条目不存在", field="seq")
        if target.redacted:
            raise InvalidInput(f"ledger entry {seq} is already redacted", field="seq")
        entry = self.append(
            session, actor=actor, action="ledger.redact", entity_type="ledger_entry",
            entity_id=str(seq), reason=reason, client=client,
        )
        session.execute(
            update(ENTRY_TABLE)
            .where(ENTRY_TABLE.c.seq == seq)
            .values(redacted=True, reason=REDACTED, changes=canonical_json(REDACTED))
        )
        return entry


def frontier_at(session: Session, size: int) -> merkle.Frontier:
    """The Merkle frontier at tree ``size``: the latest checkpoint's stored frontier at or below
    it, extended with the leaves written since (at most ``checkpoint_every`` of them)."""
    base = session.execute(
        select(CHECKPOINT_TABLE.c.tree_size, CHECKPOINT_TABLE.c.frontier)
        .where(CHECKPOINT_TABLE.c.tree_size <= size)
        .order_by(CHECKPOINT_TABLE.c.tree_size.desc()).limit(1)
    ).first()
    frontier = (merkle.Frontier.from_bytes(base.tree_size, bytes(base.frontier)) if base
                else merkle.Frontier())
    for leaf in session.execute(
        select(ENTRY_TABLE.c.leaf_hash)
        .where(ENTRY_TABLE.c.seq > frontier.size, ENTRY_TABLE.c.seq <= size)
        .order_by(ENTRY_TABLE.c.seq)
    ).scalars():
        frontier.append(bytes(leaf))
    if frontier.size != size:
        raise LedgerIntegrityError(f"ledger entries up to {size} are missing",
                                   seq=frontier.size + 1)
    return frontier


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    redacted: int = 0
    root: bytes = merkle.EMPTY_ROOT
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"ledger intact: {self.entries} entries, {self.checkpoints} signed checkpoints "
            f"verified, {self.redacted} redacted, root {self.root.hex()[:16]}…"
        )


_SELECT_FOR_VERIFY = select(
    *(ENTRY_TABLE.c[name] for name in HASHED_FIELDS), ENTRY_TABLE.c.redacted,
    ENTRY_TABLE.c.leaf_hash,
).order_by(ENTRY_TABLE.c.seq)


def iter_rows(session: Session, batch: int = 20_000) -> Iterator[Sequence[Any]]:
    """Stream every ledger row in order (hashed fields, redacted, leaf hash), in batches,
    without loading the table into memory."""
    stmt = _SELECT_FOR_VERIFY.execution_options(stream_results=True, yield_per=batch)
    yield from session.connection().execute(stmt)


_STRUCTURE = ("seq", "prev_hash", "redacted", "leaf_hash", "action", "entity_id")
_INTEGER_FIELDS = ("seq", "version")


_NULLABLE_FIELDS = ("study", "subject", "version", "client", "reason", "changes")
_ASCII_FIELDS = ("seq", "ts", "action", "entity_type", "version", "outcome", "client")


def leaf_input_sql(dialect: str) -> ColumnElement[bytes]:
    """What an entry's leaf hash is taken over — 0x00 and ``encode_entry`` of the row —
    computed by the database (SQLite or PostgreSQL) in one
    SQL expression: string work in C instead of Python, which makes ``verify`` faster.

    Python stays the authority: ``verify`` re-encodes any row whose hash does not match this
    in Python before it calls the row altered, so a difference between the two encoders (a
    text with an embedded NUL, say, or a NULL where the schema forbids one) costs time, never
    a false alarm — and an altered row stays altered under either encoder."""
    if dialect == "postgresql":
        parts = []
        for name in HASHED_FIELDS:
            text = (f"encode({name}, 'hex')" if name == "prev_hash"
                    else f"{name}::text" if name in _INTEGER_FIELDS else name)
            parts.append(f"CASE WHEN {name} IS NULL THEN '-' "
                         f"ELSE octet_length({text})::text || ':' || {text} || ',' END")
        body = " || ".join([f"'{_TAG.rstrip()}' || chr(10)", *parts])
        return literal_column(f"decode('00', 'hex') || convert_to({body}, 'UTF8')"
                              ).label("leaf_input")
    # SQLite: one printf per row (faster than || on each field). Fields written in ASCII by
    # construction count characters (cheaper); anything else there only means a recheck.
    fmt, args = _TAG, []
    for name in HASHED_FIELDS:
        nbytes = (f"length({name})" if name in _ASCII_FIELDS
                  else f"length(CAST({name} AS BLOB))")
        if name == "prev_hash":
            fmt += "64:%s,"
            args.append("lower(hex(prev_hash))")
        elif name in _NULLABLE_FIELDS:
            fmt += "%s"
            args.append(f"iif({name} IS NULL, '-', printf('%d:%s,', {nbytes}, {name}))")
        else:
            fmt += "%d:%s,"
            args += [nbytes, name]
    fmt_sql = "'" + fmt.replace("\n", "' || char(10) || '") + "'"
    return literal_column(f"CAST(char(0) || printf({fmt_sql}, {', '.join(args)}) AS BLOB)"
                          ).label("leaf_input")


def verify(session: Session, *, vkey: str, leaves: bool = True) -> VerifyReport:
    """Recompute the chain, the Merkle tree and every signed checkpoint.

    With ``leaves=False`` the leaf hashes are taken as stored (``check_leaves`` recomputes them
    from the entries' content, e.g. in another process at the same time). Raises
    LedgerIntegrityError naming the first entry (or checkpoint) that does not match.
    Read-only and idempotent.
    """
    checkpoints = {
        row.tree_size: row
        for row in session.execute(
            select(CHECKPOINT_TABLE.c.tree_size, CHECKPOINT_TABLE.c.root_hash,
                   CHECKPOINT_TABLE.c.note)
        )
    }
    report = VerifyReport()
    prev = GENESIS_HASH
    frontier = merkle.Frontier()
    hashes = frontier.hashes
    expected_seq = 1
    redacted: list[int] = []
    redaction_targets: set[str] = set()
    sha256 = hashlib.sha256
    conn = session.connection()
    stmt = select(*(ENTRY_TABLE.c[c] for c in _STRUCTURE),
                  leaf_input_sql(conn.dialect.name) if leaves else literal_column("NULL"))
    rows: Iterable[Any] = conn.execute(stmt.order_by(ENTRY_TABLE.c.seq).execution_options(
        stream_results=True, yield_per=20_000))
    for seq, prev_hash, is_redacted, leaf, action, entity_id, leaf_input in rows:
        if seq != expected_seq:
            raise LedgerIntegrityError(
                f"entry {expected_seq} is missing (next present is {seq})", seq=expected_seq)
        if prev_hash != prev:
            raise LedgerIntegrityError(
                f"entry {seq} does not name its predecessor's hash: the chain is broken",
                seq=seq)
        if is_redacted:
            redacted.append(seq)
        elif leaves and sha256(leaf_input or b"").digest() != leaf \
                and not _leaf_matches(session, seq, leaf):
            raise _altered(seq)
        if action == "ledger.redact":
            redaction_targets.add(entity_id)
        prev = leaf
        # Frontier.append, inlined: merge the perfect subtrees the new leaf completes.
        h, size = leaf, seq - 1
        while size & 1:
            h = sha256(b"\x01" + hashes.pop() + h).digest()
            size >>= 1
        hashes.append(h)
        if seq in checkpoints:
            frontier.size = seq
            _check_checkpoint(checkpoints[seq], frontier.root(), vkey)
            report.checkpoints += 1
        expected_seq += 1
    frontier.size = expected_seq - 1
    for seq in redacted:
        if str(seq) not in redaction_targets:
            raise LedgerIntegrityError(
                f"entry {seq} is marked redacted but no ledger.redact entry names it", seq=seq)
    size = expected_seq - 1
    for cp_size in checkpoints:
        if cp_size > size:
            raise LedgerIntegrityError(
                f"checkpoint at size {cp_size} is beyond the ledger's {size} entries: "
                "entries were removed", seq=size + 1)
        if cp_size == 0:
            _check_checkpoint(checkpoints[0], merkle.EMPTY_ROOT, vkey)
            report.checkpoints += 1
    settle_head(session)
    head = session.execute(select(HEAD_TABLE.c.seq, HEAD_TABLE.c.hash)).one()
    if head.seq != size or bytes(head.hash) != prev:
        raise LedgerIntegrityError(
            f"ledger head names entry {head.seq} but the ledger ends at {size}", seq=size + 1)
    report.entries = size
    report.redacted = len(redacted)
    report.root = frontier.root()
    return report


def _leaf_matches(session: Session, seq: int, leaf: bytes) -> bool:
    """The authority: re-encode one entry in Python and compare with its leaf hash."""
    row = session.execute(_SELECT_FOR_VERIFY.where(ENTRY_TABLE.c.seq == seq)).one()
    return hashlib.sha256(b"\x00" + encode_entry(row[:len(HASHED_FIELDS)])).digest() == leaf


def _altered(seq: int) -> LedgerIntegrityError:
    return LedgerIntegrityError(
        f"entry {seq} does not match its leaf hash: its content was altered", seq=seq)


def check_leaves(session: Session, *, first: int = 1, last: int | None = None) -> int | None:
    """Recompute the leaf hash of every entry in ``first..last`` from its stored content.

    Returns the first sequence number whose content does not match its leaf hash (redacted
    entries excepted), or None. The other half of ``verify(leaves=False)``; read-only.
    """
    conn = session.connection()
    stmt = select(ENTRY_TABLE.c.seq, ENTRY_TABLE.c.redacted, ENTRY_TABLE.c.leaf_hash,
                  leaf_input_sql(conn.dialect.name)).where(ENTRY_TABLE.c.seq >= first)
    if last is not None:
        stmt = stmt.where(ENTRY_TABLE.c.seq <= last)
    sha256 = hashlib.sha256
    for seq, is_redacted, leaf, leaf_input in conn.execute(stmt.order_by(ENTRY_TABLE.c.seq)
                                                           .execution_options(
                                                               stream_results=True,
                                                               yield_per=20_000)):
        if not is_redacted and sha256(leaf_input or b"").digest() != leaf \
                and not _leaf_matches(session, seq, leaf):
            return int(seq)
    return None


def _check_checkpoint(cp: Any, root: bytes, vkey: str) -> None:
    try:
        opened = note.open_checkpoint(cp.note, vkey)
    except note.NoteError as exc:
        raise LedgerIntegrityError(
            f"checkpoint at size {cp.tree_size}: {exc}", seq=cp.tree_size) from exc
    if opened.size != cp.tree_size or opened.root != bytes(cp.root_hash):
        raise LedgerIntegrityError(
            f"checkpoint at size {cp.tree_size}: stored root differs from the signed note",
            seq=cp.tree_size)
    if opened.root != root:
        raise LedgerIntegrityError(
            f"entries 1..{cp.tree_size} do not reproduce the signed checkpoint at size "
            f"{cp.tree_size}: history was rewritten", seq=cp.tree_size)


def settle_head(session: Session) -> None:
    """Bring the head row up to this transaction's own entries before reading it: PostgreSQL
    moves it at commit (a deferred trigger; see ``audit_trail.triggers``), and this fires
    what is pending now. Nothing to do on SQLite, or in a transaction that appended nothing."""
    if session.connection().dialect.name == "postgresql":
        session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        session.execute(text("SET CONSTRAINTS ALL DEFERRED"))


def ledger_size(session: Session) -> int:
    settle_head(session)
    return int(session.execute(select(HEAD_TABLE.c.seq).where(HEAD_TABLE.c.id == 1)).scalar_one())


def leaf_hashes(session: Session, size: int) -> list[bytes]:
    rows = session.execute(
        select(ENTRY_TABLE.c.leaf_hash).where(ENTRY_TABLE.c.seq <= size)
        .order_by(ENTRY_TABLE.c.seq)
    ).scalars()
    leaves = [bytes(r) for r in rows]
    if len(leaves) != size:
        raise InvalidInput(f"the ledger has only {len(leaves)} entries", field="size")
    return leaves


def entry_bytes(session: Session, seq: int) -> tuple[bytes, bool]:
    row = session.execute(
        select(*(ENTRY_TABLE.c[n] for n in HASHED_FIELDS), ENTRY_TABLE.c.redacted)
        .where(ENTRY_TABLE.c.seq == seq)
    ).one_or_none()
    if row is None:
        raise NotFound(f"ledger entry {seq} does not exist", field="seq")
    return encode_entry(row[: len(HASHED_FIELDS)]), bool(row[-1])


def checkpoint_note(session: Session, size: int) -> str:
    cp = session.get(LedgerCheckpoint, size)
    if cp is None:
        sizes = session.execute(select(CHECKPOINT_TABLE.c.tree_size)).scalars().all()
        raise NotFound(
            f"no signed checkpoint at size {size}; checkpoints exist at sizes "
            f"{', '.join(map(str, sorted(sizes))) or 'none'}", field="size")
    return cp.note


def list_checkpoints(session: Session) -> list[LedgerCheckpoint]:
    return list(session.execute(
        select(LedgerCheckpoint).order_by(LedgerCheckpoint.tree_size)  # type: ignore[arg-type]
    ).scalars())


def latest_entry(session: Session, *, action: str) -> Any:
    """The newest entry of ``action`` (seq, ts, outcome, reason), or None."""
    return session.execute(
        select(ENTRY_TABLE.c.seq, ENTRY_TABLE.c.ts, ENTRY_TABLE.c.outcome, ENTRY_TABLE.c.reason)
        .where(ENTRY_TABLE.c.action == action).order_by(ENTRY_TABLE.c.seq.desc()).limit(1)
    ).first()
