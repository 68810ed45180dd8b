"""``edc audit``: verify, checkpoint, export, prove and redact the audit ledger."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audit_trail import merkle, note, proofs
from audit_trail import service as ledger_service
from audit_trail.errors import LedgerIntegrityError
from edc.cli.common import CliError, add, load_state, write_out
from edc.settings import Settings


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from edc.audit import verify_ledger

    state = load_state(settings)
    try:
        report = verify_ledger(settings.database_url, vkey=state.keys.signer.vkey,
                               jobs=args.jobs)
    except LedgerIntegrityError as exc:
        print(f"LEDGER NOT INTACT: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    state = load_state(settings)
    with state.sessions() as session, session.begin():
        cp = state.ledger.checkpoint(session, reason=args.reason)
        print(f"checkpoint at tree size {cp.tree_size}, root {cp.root_hash.hex()}")
        print(cp.note, end="")
    return 0


def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    state = load_state(settings)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "verifier-key.txt").write_text(state.keys.signer.vkey + "\n")
    with state.sessions() as session:
        cps = ledger_service.list_checkpoints(session)
    for cp in cps:
        (out / f"checkpoint-{cp.tree_size:012d}.txt").write_text(cp.note)
    print(f"wrote {len(cps)} checkpoints and verifier-key.txt to {out}")
    return 0


def cmd_proof_inclusion(settings: Settings, args: argparse.Namespace) -> int:
    state = load_state(settings)
    with state.sessions() as session:
        doc = proofs.inclusion(session, seq=args.seq, size=args.size)
    write_out(args.out, proofs.dumps(doc))
    return 0


def cmd_proof_consistency(settings: Settings, args: argparse.Namespace) -> int:
    state = load_state(settings)
    with state.sessions() as session:
        doc = proofs.consistency(session, first=args.from_, second=args.to)
    write_out(args.out, proofs.dumps(doc))
    return 0


def cmd_check_proof(_settings: Settings, args: argparse.Namespace) -> int:
    """Needs no database and no key directory: only the proof and the verifier key."""
    try:
        vkey = Path(args.vkey).read_text().strip()
        doc = json.loads(Path(args.proof).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the proof or the verifier key: {exc}") from exc
    if not isinstance(doc, dict):
        raise CliError("the proof file is not a JSON object")
    try:
        print(proofs.check(doc, vkey=vkey))
    except (merkle.ProofError, note.NoteError) as exc:
        print(f"PROOF FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_audit_redact(settings: Settings, args: argparse.Namespace) -> int:
    from studies.accounts.service import find_user

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        user = find_user(session, args.by)
        if user is None:
            raise CliError(f"no account named {args.by!r}")
        from studies.accounts.service import actor_for
        from studies.kernel.actor import require
        from studies.kernel.roles import Perm

        require(actor_for(session, user, client="cli"), Perm.LEDGER_REDACT)
        entry = state.ledger.redact(session, seq=args.seq, actor=user.username,
                                    reason=args.reason, client="cli")
    print(f"entry {args.seq} redacted; recorded as entry {entry.seq}")
    return 0


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify, checkpoint and prove the audit ledger")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    v = add(asub, "verify", cmd_audit_verify,
            "recompute the chain, the tree and every checkpoint")
    v.add_argument("--jobs", type=int, default=None,
                   help="worker processes recomputing the leaf hashes beside the main pass "
                   "(default: one per core; 1: everything in one process)")
    c = add(asub, "checkpoint", cmd_audit_checkpoint, "sign a checkpoint of the ledger now")
    c.add_argument("--reason", default="manual")
    e = add(asub, "export-checkpoints", cmd_audit_export,
            "write every signed checkpoint and the verifier key to a directory")
    e.add_argument("--out", required=True)
    r = add(asub, "redact", cmd_audit_redact,
            "redact an entry's payload (identity typed into the wrong field)")
    r.add_argument("seq", type=int)
    r.add_argument("--by", required=True, help="the custodian's username")
    r.add_argument("--reason", required=True)
    proof = asub.add_parser("proof", help="print an RFC 9162 proof as JSON")
    psub = proof.add_subparsers(dest="proof_command", required=True)
    i = add(psub, "inclusion", cmd_proof_inclusion, "prove entry SEQ is in the tree of size N")
    i.add_argument("seq", type=int)
    i.add_argument("--size", type=int, required=True)
    i.add_argument("--out")
    k = add(psub, "consistency", cmd_proof_consistency, "prove size M is a prefix of size N")
    k.add_argument("--from", dest="from_", type=int, required=True)
    k.add_argument("--to", type=int, required=True)
    k.add_argument("--out")
    cp = add(asub, "check-proof", cmd_check_proof,
             "verify a proof offline with only the verifier key")
    cp.add_argument("proof")
    cp.add_argument("--vkey", required=True, help="verifier-key.txt from export-checkpoints")
