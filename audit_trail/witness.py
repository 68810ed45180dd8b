"""A witness outside the database (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature).

Two halves:

- **The witness** (``Witness``): its own Ed25519 key and a directory of its own, on a machine
  the hospital's IT does not control. For each log it trusts (by the log's verifier key) it
  keeps the latest checkpoint it cosigned. ``add_checkpoint`` takes a tlog-witness request
  (``old <size>``, the consistency proof lines, a blank line, the signed checkpoint), checks
  the log's signature and the RFC 9162 consistency proof from the checkpoint it holds, and
  only then cosigns and stores the new one; anything that does not extend what it holds is
  refused with the protocol's status code. Check and store happen under one lock.
- **The log's side**: build a request from the ledger (``submission``), read a witness's
  answer, and compare the database with witnessed checkpoints (``compare``), naming
  truncation, rollback and rewriting.

The witness needs no database and nothing from the EDC but this module.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail import merkle, note
from audit_trail.models import LedgerCheckpoint
from audit_trail.service import CHECKPOINT_TABLE, ENTRY_TABLE, ledger_size

MAX_PROOF_LINES = 63
KEY_FILE = "witness.key"
CONFIG_FILE = "witness.json"


class WitnessError(Exception):
    """A request the witness refuses; ``status`` is the tlog-witness HTTP status."""

    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.size = size  # on 409: the size of the latest checkpoint the witness cosigned


@dataclass(frozen=True)
class Request:
    old_size: int
    proof: list[bytes]
    checkpoint: str  # the signed note


def encode_request(old_size: int, proof: Iterable[bytes], checkpoint: str) -> bytes:
    lines = [f"old {old_size}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n"]
    return ("".join(lines) + checkpoint).encode()


def parse_request(body: bytes) -> Request:
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise WitnessError(400, "request body is not UTF-8") from exc
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise WitnessError(400, "request has no blank line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size_s = first[4:]
    if not first.startswith("old ") or not size_s.isdigit() or str(int(size_s)) != size_s:
        raise WitnessError(400, "the first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            h = base64.b64decode(line, validate=True)
        except ValueError as exc:
            raise WitnessError(400, "a consistency proof line is not base64") from exc
        if len(h) != 32:
            raise WitnessError(400, "a consistency proof line is not a SHA-256 hash")
        proof.append(h)
    return Request(int(size_s), proof, checkpoint)


def _origin_of(checkpoint: str) -> str:
    return checkpoint.split("\n", 1)[0]


def _body_of(checkpoint: str) -> str:
    return checkpoint.partition("\n\n")[0] + "\n"


def _atomic_write(path: Path, data: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class Witness:
    """A witness kept in ``directory``: ``witness.key`` (Ed25519 seed, 0600), ``witness.json``
    (its name and the verifier keys of the logs it witnesses) and, per log, ``logs/<id>/``
    with ``latest.txt`` (the checkpoint it last cosigned, with its cosignature),
    ``cosigned/<size>.txt`` (every one it cosigned) and ``refused.log``."""

    _locks: dict[Path, threading.Lock] = {}

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            config = json.loads((directory / CONFIG_FILE).read_text())
            seed = base64.b64decode((directory / KEY_FILE).read_text().strip(), validate=True)
            self.name = str(config["name"])
            self.logs = {note.parse_verifier_key(v)[0]: str(v) for v in config["logs"]}
        except (OSError, ValueError, KeyError, TypeError, note.NoteError) as exc:
            raise WitnessError(500, f"witness directory {directory} is not usable: {exc}") \
                from exc
        if os.stat(directory / KEY_FILE).st_mode & 0o077:
            raise WitnessError(500, f"{directory / KEY_FILE} is readable by others (chmod 600)")
        self.key = SigningKey(seed)
        self._lock = Witness._locks.setdefault(directory.resolve(), threading.Lock())

    @staticmethod
    def create(directory: Path, *, name: str, log_vkeys: list[str]) -> Witness:
        """Make a new witness (refuses a directory that already holds one)."""
        for v in log_vkeys:
            note.parse_verifier_key(v)
        if not name or any(c.isspace() or c == "+" for c in name):
            raise WitnessError(400, "a witness name must be non-empty, without spaces or '+'")
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        fd = os.open(directory / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(bytes(SigningKey.generate())).decode() + "\n")
        _atomic_write(directory / CONFIG_FILE,
                      json.dumps({"name": name, "logs": log_vkeys}, indent=2) + "\n")
        return Witness(directory)

    @property
    def vkey(self) -> str:
        return note.verifier_key(self.name, bytes(self.key.verify_key), note.ALG_COSIGNATURE_V1)

    def _log_dir(self, origin: str) -> Path:
        d = self.directory / "logs" / hashlib.sha256(origin.encode()).hexdigest()[:16]
        (d / "cosigned").mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    def latest(self, origin: str) -> str | None:
        """The checkpoint (with this witness's cosignature) it last cosigned for ``origin``."""
        path = self._log_dir(origin) / "latest.txt"
        return path.read_text() if path.exists() else None

    def cosigned(self, origin: str) -> list[str]:
        d = self._log_dir(origin) / "cosigned"
        return [p.read_text() for p in sorted(d.glob("*.txt"))]

    def add_checkpoint(self, body: bytes, *, now: dt.datetime | None = None) -> str:
        """Handle one tlog-witness ``add-checkpoint`` request; return the cosignature line.

        Raises WitnessError with the protocol's status: 400 malformed or old size beyond the
        checkpoint, 404 unknown log, 403 no valid signature of the log, 409 old size is not
        the witness's (``size`` says its own) or same size with another root, 422 the
        consistency proof does not verify."""
        req = parse_request(body)
        origin = _origin_of(req.checkpoint)
        vkey = self.logs.get(origin)
        if vkey is None:
            raise WitnessError(404, f"this witness does not witness the log {origin!r}")
        try:
            cp = note.open_checkpoint(req.checkpoint, vkey)
        except note.NoteError as exc:
            raise WitnessError(403, f"the checkpoint is not signed by the log's key: {exc}") \
                from exc
        if req.old_size > cp.size:
            raise WitnessError(400, f"old size {req.old_size} is beyond the checkpoint's "
                               f"size {cp.size}")
        when = now or dt.datetime.now(dt.UTC)
        log_dir = self._log_dir(origin)
        with self._lock, open(log_dir / ".lock", "a") as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)
            held = self.latest(origin)
            held_cp = note.open_checkpoint(held, vkey) if held is not None else None
            held_size = held_cp.size if held_cp is not None else 0
            try:
                if req.old_size != held_size:
                    raise WitnessError(409, f"this witness holds size {held_size}, not "
                                       f"{req.old_size}", size=held_size)
                if held_cp is not None and held_cp.size == cp.size:
                    if held_cp.root != cp.root:
                        raise WitnessError(409, f"a different root for size {cp.size} than the "
                                           "one this witness cosigned: the log forked",
                                           size=held_size)
                elif held_cp is not None:
                    try:
                        merkle.verify_consistency(held_cp.size, cp.size, held_cp.root, cp.root,
                                                  req.proof)
                    except merkle.ProofError as exc:
                        raise WitnessError(422, f"size {cp.size} does not extend size "
                                           f"{held_cp.size}: {exc}") from exc
                elif req.proof:
                    raise WitnessError(422, "the proof must be empty from size 0")
            except WitnessError as exc:
                with open(log_dir / "refused.log", "a") as fh:
                    fh.write(json.dumps({"at": when.isoformat(), "status": exc.status,
                                         "reason": exc.message, "old": req.old_size,
                                         "checkpoint": req.checkpoint}) + "\n")
                raise
            line = note.cosign(_body_of(req.checkpoint), self.name, self.key,
                               int(when.timestamp()))
            # Keep the log's own signature and ours (other cosignatures are not ours to keep).
            log_name = note.parse_verifier_key(vkey)[0]
            log_sigs = "".join(ln + "\n" for ln in req.checkpoint.partition("\n\n")[2]
                               .splitlines() if ln.startswith(f"{note.SIG_PREFIX}{log_name} "))
            kept = f"{_body_of(req.checkpoint)}\n{log_sigs}{line}"
            _atomic_write(log_dir / "cosigned" / f"{cp.size:012d}.txt", kept)
            _atomic_write(log_dir / "latest.txt", kept)
            return line


# ---- the log's side -----------------------------------------------------------------------


def subtree_hash(session: Session, lo: int, hi: int) -> bytes:
    """RFC 9162 hash of the leaves with indexes ``lo..hi-1`` (sequences lo+1..hi), streamed."""
    f = merkle.Frontier()
    for leaf in session.execute(
        select(ENTRY_TABLE.c.leaf_hash).where(ENTRY_TABLE.c.seq > lo, ENTRY_TABLE.c.seq <= hi)
        .order_by(ENTRY_TABLE.c.seq).execution_options(yield_per=20_000)
    ).scalars():
        f.append(bytes(leaf))
    if f.size != hi - lo:
        raise merkle.ProofError(f"ledger entries {lo + 1}..{hi} are not all present")
    return f.root()


def submission(session: Session, *, old_size: int, checkpoint: LedgerCheckpoint) -> bytes:
    """The add-checkpoint request moving a witness holding ``old_size`` to ``checkpoint``."""
    size = checkpoint.tree_size
    proof = ([] if old_size in (0, size) else
             merkle.consistency_proof_by(old_size, size,
                                         lambda lo, hi: subtree_hash(session, lo, hi)))
    return encode_request(old_size, proof, checkpoint.note)


def latest_checkpoint(session: Session) -> LedgerCheckpoint | None:
    return session.execute(
        select(LedgerCheckpoint).order_by(CHECKPOINT_TABLE.c.tree_size.desc()).limit(1)
    ).scalars().first()


@dataclass(frozen=True)
class Witnessed:
    """A checkpoint held outside the database: who holds it (a witness, an export), its size,
    root, and when it was cosigned (if known)."""

    source: str
    size: int
    root: bytes
    cosigned_at: dt.datetime | None = None


def read_witnessed(text: str, *, source: str, log_vkey: str,
                   witness_vkeys: Iterable[str] = ()) -> Witnessed:
    """Parse a checkpoint note held outside the database. The log's signature must verify
    (with the verifier key the auditor trusts); each witness key given must have cosigned it."""
    cp = note.open_checkpoint(text, log_vkey)
    when = None
    for wk in witness_vkeys:
        when = dt.datetime.fromtimestamp(note.open_cosignature(text, wk), dt.UTC)
    return Witnessed(source, cp.size, cp.root, when)


def compare(session: Session, witnessed: Iterable[Witnessed], *, vkey: str) -> list[str]:
    """What is wrong with the database against checkpoints held outside it; empty if it
    contains and extends every one. Each problem names the tamper: truncation or rollback
    (entries the outside saw are gone), a rewrite re-signed with the log's key (the database
    holds another signed checkpoint of the same size), or a fork (history differs).

    The roots are rebuilt from the stored leaf hashes in one streamed pass (``verify`` checks
    those leaves against the entries' content)."""
    size = ledger_size(session)
    wanted = sorted(witnessed, key=lambda w: w.size)
    roots: dict[int, bytes] = {}
    sizes = {w.size for w in wanted if w.size <= size}
    if 0 in sizes:
        roots[0] = merkle.EMPTY_ROOT
    last = max(sizes, default=0)
    f = merkle.Frontier()
    if last:
        for leaf in session.execute(
            select(ENTRY_TABLE.c.leaf_hash).where(ENTRY_TABLE.c.seq <= last)
            .order_by(ENTRY_TABLE.c.seq).execution_options(yield_per=20_000)
        ).scalars():
            f.append(bytes(leaf))
            if f.size in sizes:
                roots[f.size] = f.root()
    problems = []
    for w in wanted:
        seen = (f"{w.source} holds a checkpoint of size {w.size}"
                + (f" cosigned at {w.cosigned_at:%Y-%m-%d %H:%M:%S} UTC" if w.cosigned_at
                   else ""))
        if w.size > size or w.size not in roots:
            problems.append(
                f"TRUNCATED OR ROLLED BACK: {seen}, but the database holds only {size} "
                f"entries: entries {size + 1}..{w.size} were removed, or the database was "
                "restored from an older backup / 审计日志被截断或回滚")
            continue
        if roots[w.size] == w.root:
            continue
        own = session.get(LedgerCheckpoint, w.size)
        resigned = False
        if own is not None:
            try:
                resigned = note.open_checkpoint(own.note, vkey).root == roots[w.size]
            except note.NoteError:
                resigned = False
        if resigned:
            problems.append(
                f"REWRITTEN WITH THE LOG'S KEY: {seen}, but the database holds a different "
                f"checkpoint of size {w.size} that verifies with the log's key: history was "
                "rewritten and re-signed (is the signing key stolen?) / 审计日志被改写并重新签名")
        else:
            problems.append(
                f"REWRITTEN OR FORKED: {seen}, but entries 1..{w.size} in the database give "
                "another root: history was rewritten, or an older backup was restored and "
                "written on / 审计日志与见证不一致")
    return problems
