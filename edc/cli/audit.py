"""``edc audit``: verify, checkpoint, export, prove and redact the audit ledger."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audit_trail import merkle, note, proofs, witness
from audit_trail import service as ledger_service
from audit_trail.errors import LedgerIntegrityError
from edc.cli.common import CliError, add, load_state, witness_clients, write_out
from edc.settings import Settings, parse_witnesses
from studies.kernel.i18n import _


def _witnessed(settings: Settings, args: argparse.Namespace, vkey: str
               ) -> list[witness.Witnessed]:
    """The checkpoints held outside the database that verify is asked to check against:
    each ``--witness URL``'s latest cosigned one, and every note in ``--against DIR``."""
    import urllib.error
    import urllib.parse
    import urllib.request

    configured = dict(parse_witnesses(settings.witnesses))
    try:
        given = [Path(p).read_text().strip() for p in args.witness_key or []]
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    out = []
    origin = note.parse_verifier_key(vkey)[0]
    for i, url in enumerate(args.witness or []):
        url = url.rstrip("/")
        wkey = given[i] if i < len(given) else configured.get(url)
        if wkey is None:
            raise CliError(f"no verifier key for the witness {url}: give --witness-key FILE "
                           "or list it in EDC_WITNESSES")
        try:
            with urllib.request.urlopen(  # noqa: S310
                    f"{url}/checkpoint/{urllib.parse.quote(origin)}", timeout=10) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue  # the witness has cosigned nothing of this log yet
            raise CliError(f"witness {url}: {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise CliError(f"cannot reach the witness {url}: {exc}") from None
        try:
            out.append(witness.read_witnessed(text, source=f"witness {wkey.split('+')[0]}",
                                              log_vkey=vkey, witness_vkeys=[wkey]))
        except note.NoteError as exc:
            raise CliError(f"witness {url} returned a checkpoint that does not verify: "
                           f"{exc}") from None
    if args.against:
        d = Path(args.against)
        files = sorted(p for p in d.glob("*.txt")
                       if p.name not in ("verifier-key.txt", "witness-key.txt"))
        if not files:
            raise CliError(f"{d} holds no checkpoint files (*.txt)")
        dir_vkey = (d / "verifier-key.txt").read_text().strip() \
            if (d / "verifier-key.txt").exists() else vkey
        for p in files:
            try:
                out.append(witness.read_witnessed(p.read_text(), source=str(p),
                                                  log_vkey=dir_vkey, witness_vkeys=given))
            except (note.NoteError, OSError) as exc:
                raise CliError(f"{p}: not a checkpoint of this log: {exc}") from None
    return out


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from edc.audit import verify_ledger

    state = load_state(settings)
    vkey = state.keys.signer.vkey
    outside = _witnessed(settings, args, vkey)
    problems = []
    report = None
    try:
        report = verify_ledger(settings.database_url, vkey=vkey, jobs=args.jobs)
    except LedgerIntegrityError as exc:
        problems.append(str(exc))
    if outside:
        with state.read_sessions() as session:
            problems += witness.compare(session, outside, vkey=vkey)
    if problems:
        for p in problems:
            print(f"LEDGER NOT INTACT: {p}", file=sys.stderr)
        return 1
    assert report is not None
    print(report.summary() + (f"; contains and extends {len(outside)} checkpoints held "
                              "outside the database" if outside else ""))
    return 0


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    state = load_state(settings)
    with state.sessions() as session, session.begin():
        cp = state.ledger.checkpoint(session, reason=args.reason)
        print(f"checkpoint at tree size {cp.tree_size}, root {cp.root_hash.hex()}")
        print(cp.note, end="")
    clients = witness_clients(settings)
    if clients:
        from edc.jobs.checkpoints import submit

        lines = submit(state.sessions, clients)
        for line in lines:
            print(line, file=sys.stderr)
        if any("NOT COSIGNED" in line for line in lines):
            return 1
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


def _signing_password(args: argparse.Namespace) -> str:
    """The signer's password: one line on standard input with ``--password-stdin``, else a
    prompt that does not echo. Never a command-line argument (it would show in ``ps``)."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(_("password of {by}").format(by=args.by) + " ")


def cmd_audit_redact(settings: Settings, args: argparse.Namespace) -> int:
    """Redact an entry, under the custodian's electronic signature (password and, where the
    account has one, the second-factor code)."""
    import hashlib

    from audit_trail.errors import DomainError
    from studies.accounts.signatures import sign_at_console
    from studies.kernel.roles import Perm

    password = _signing_password(args)
    state = load_state(settings)
    digest = hashlib.sha256(f"ledger.redact\n{args.seq}\n{args.reason}".encode()).hexdigest()
    try:
        with state.sessions() as session, session.begin():
            actor, _sig = sign_at_console(
                session, state.ledger, username=args.by, password=password, totp=args.totp,
                client="cli", meaning=f"redact ledger entry {args.seq} / 删除审计条目 "
                f"{args.seq} 的内容", content_hash=digest, entity_type="ledger_entry",
                entity_id=str(args.seq), needs=Perm.LEDGER_REDACT, config=state.auth)
            entry = state.ledger.redact(session, seq=args.seq, actor=actor.username,
                                        reason=args.reason, client="cli")
    except DomainError as exc:  # the refusal is audited in a transaction of its own
        audit = exc.audit
        if audit:
            with state.sessions() as session, session.begin():
                for e in audit if isinstance(audit, list) else [audit]:
                    state.ledger.append(session, **e)
        raise
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
    v.add_argument("--witness", action="append", metavar="URL",
                   help="also check against the latest checkpoint this witness cosigned "
                   "(repeatable)")
    v.add_argument("--witness-key", action="append", metavar="FILE",
                   help="a witness's verifier key, in the order of --witness (default: "
                   "EDC_WITNESSES); with --against, cosignatures every checkpoint must carry")
    v.add_argument("--against", metavar="DIR",
                   help="also check against every checkpoint file in DIR (export-checkpoints "
                   "or edc witness export)")
    c = add(asub, "checkpoint", cmd_audit_checkpoint, "sign a checkpoint of the ledger now")
    c.add_argument("--reason", default="manual")
    e = add(asub, "export-checkpoints", cmd_audit_export,
            "write every signed checkpoint and the verifier key to a directory")
    e.add_argument("--out", required=True)
    r = add(asub, "redact", cmd_audit_redact,
            "redact an entry's payload (identity typed into the wrong field)")
    r.add_argument("seq", type=int)
    r.add_argument("--by", required=True, help="the custodian's username; signs the redaction")
    r.add_argument("--reason", required=True)
    r.add_argument("--totp", help="the custodian's second-factor code (if enrolled)")
    r.add_argument("--password-stdin", action="store_true",
                   help="read the custodian's password from standard input (default: prompt)")
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
