"""The ``edc`` command. Every failure the operator can fix is one line on stderr and a non-zero
exit, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from audit_trail import merkle, note, proofs
from audit_trail import service as ledger_service
from audit_trail.errors import DomainError, LedgerIntegrityError
from edc import keyring
from edc.db import DatabaseError, alembic_config, make_engine
from edc.settings import Settings
from edc.state import AppState, build_state


class CliError(Exception):
    pass


def _state(settings: Settings) -> AppState:
    return build_state(settings)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from alembic import command
    from sqlalchemy.exc import OperationalError

    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(settings.database_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot reach the database: {str(exc.orig).strip().splitlines()[0]}; is the server "
            "running and EDC_DATABASE_URL right?") from exc
    except Exception as exc:  # alembic's "Can't locate revision" for a newer database
        if "Can't locate revision" in str(exc):
            raise DatabaseError("the database schema is newer than this program knows; "
                                "upgrade the software before using this database") from exc
        raise
    finally:
        engine.dispose()
    print("database schema is up to date")
    return 0


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    created = keyring.create(settings.key_dir, origin=settings.ledger_origin)
    keyring.load(settings.key_dir)
    if created:
        print(f"key directory {settings.key_dir}: created {', '.join(created)} (mode 0600). "
              "Back it up apart from the database.")
    else:
        print(f"key directory {settings.key_dir}: present")
    return cmd_migrate(settings, args)


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> int:
    from edc import demo

    if settings.environment == "production":
        raise CliError("refusing to load demo data in production (EDC_ENVIRONMENT=production)")
    state = _state(settings)
    with state.sessions() as session, session.begin():
        lines = demo.load(session, state)
    print("\n".join(lines))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from edc.app import create_app, start_extract_worker

    state = _state(settings)
    app = create_app(state)
    start_extract_worker(app, state)
    print(f"serving on http://{args.host}:{args.port}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                proxy_headers=False, server_header=False)
    return 0


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from edc.audit import verify_ledger

    state = _state(settings)
    try:
        report = verify_ledger(settings.database_url, vkey=state.keys.signer.vkey,
                               jobs=args.jobs)
    except LedgerIntegrityError as exc:
        print(f"LEDGER NOT INTACT: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def cmd_audit_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    state = _state(settings)
    with state.sessions() as session, session.begin():
        cp = state.ledger.checkpoint(session, reason=args.reason)
        print(f"checkpoint at tree size {cp.tree_size}, root {cp.root_hash.hex()}")
        print(cp.note, end="")
    return 0


def cmd_audit_export(settings: Settings, args: argparse.Namespace) -> int:
    state = _state(settings)
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
    state = _state(settings)
    with state.sessions() as session:
        doc = proofs.inclusion(session, seq=args.seq, size=args.size)
    _write(args.out, proofs.dumps(doc))
    return 0


def cmd_proof_consistency(settings: Settings, args: argparse.Namespace) -> int:
    state = _state(settings)
    with state.sessions() as session:
        doc = proofs.consistency(session, first=args.from_, second=args.to)
    _write(args.out, proofs.dumps(doc))
    return 0


def _write(out: str | None, text: str) -> None:
    if out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)


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

    state = _state(settings)
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


# --- accounts (issue 6) ---------------------------------------------------------------------

def cmd_accounts_permissions(_settings: Settings, args: argparse.Namespace) -> int:
    from edc.permissions_doc import render

    _write(args.out, render())
    return 0


def _cli_admin(settings: Settings, args: argparse.Namespace, fn_name: str) -> int:
    from studies.accounts import service as accounts

    state = _state(settings)
    with state.sessions() as session, session.begin():
        by = accounts.find_user(session, args.by)
        if by is None:
            raise CliError(f"no account named {args.by!r}")
        actor = accounts.actor_for(session, by, client="cli")
        getattr(accounts, fn_name)(session, state.ledger, actor=actor, username=args.username)
    print(f"{args.username}: done ({fn_name.replace('_', ' ')})")
    return 0


def cmd_accounts_unlock(settings: Settings, args: argparse.Namespace) -> int:
    return _cli_admin(settings, args, "unlock")


def cmd_accounts_reset_totp(settings: Settings, args: argparse.Namespace) -> int:
    return _cli_admin(settings, args, "reset_second_factor")

# ── Code-index keys (issue 4; docs/code-index.md) ────────────────────────────────────────────


def _custodian(session: Any, username: str) -> Any:
    from studies.accounts.service import actor_for, find_user

    user = find_user(session, username)
    if user is None:
        raise CliError(f"no account named {username!r}")
    return actor_for(session, user, client="cli")


def cmd_keys_rotate_code_index(settings: Settings, args: argparse.Namespace) -> int:
    """Stage a new key, re-encrypt the whole index in ONE transaction, promote the key, then
    prove with the key directory as it now is that every entry decrypts under the new key."""
    import datetime as dt

    from studies.subjects import service as subjects

    state = _state(settings)
    with state.sessions() as session:
        for line in keyring.recover_code_index_rotation(settings.key_dir,
                                                        set(subjects.key_usage(session))):
            print(line)
    keys = keyring.load(settings.key_dir)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    staged = keyring.stage_code_index_rotation(settings.key_dir, stamp=stamp)
    try:
        with state.sessions() as session, session.begin():
            actor = _custodian(session, args.by)
            report = subjects.rotate_code_index(session, state.ledger, actor=actor,
                                                keys=keys.code_index_keys(),
                                                new_key=staged.new_key, client="cli")
    except BaseException:
        _settle_rotation(state, staged)
        raise
    keyring.promote_code_index_key(staged)
    after = keyring.load(settings.key_dir)
    only_new = subjects.CodeIndexKeys(current=after.code_index_key, blind=after.blind_index_key)
    with state.sessions() as session:
        check = subjects.verify_code_index(session, keys=only_new)
    if check.entries != report.entries or set(check.by_key) - {only_new.current_id}:
        raise CliError("verification after rotation failed; keep every key file and restore "
                       "from backup")
    print(f"re-encrypted {report.entries} code-index entries under key {report.new_key_id} "
          f"(was {', '.join(report.old_key_ids) or 'none'}); all {check.entries} verified to "
          f"decrypt under the new key. Old key kept as {staged.retired.name}; back up the key "
          "directory now.")
    return 0


def _settle_rotation(state: AppState, staged: keyring.StagedRotation) -> None:
    """After a failed rotation: drop the staged key if the transaction did not commit (the
    usual case), promote it if it did. If the database cannot be asked, leave both files:
    ``load()`` reads them, so the index stays readable, and the next rotation settles them."""
    from studies.subjects import service as subjects
    from studies.subjects.crypto import key_id

    try:
        with state.sessions() as session:
            used = set(subjects.key_usage(session))
    except Exception:
        return
    if key_id(staged.new_key) in used:
        keyring.promote_code_index_key(staged)
    else:
        keyring.abandon_code_index_rotation(staged)


def cmd_locks_relock_expired(settings: Settings, _args: argparse.Namespace) -> int:
    """Re-lock every unlock whose period is over (issue 7; safe to run from cron)."""
    from studies.locks import service as locks

    state = _state(settings)
    with state.sessions() as session, session.begin():
        done = locks.relock_expired(session, state.ledger)
    print(f"re-locked {len(done)} unlock(s)" + (": " + ", ".join(done) if done else ""))
    return 0


def cmd_keys_status(settings: Settings, _args: argparse.Namespace) -> int:
    """Which code-index keys the directory holds and how many entries each encrypts."""
    from studies.subjects import service as subjects
    from studies.subjects.crypto import key_id

    state = _state(settings)
    with state.sessions() as session:
        usage = subjects.key_usage(session)
    files = [(keyring.CODE_INDEX, state.keys.code_index_key)] + [
        (p.name, k) for p, k in keyring.older_code_index_keys(settings.key_dir)]
    for name, key in files:
        kid = key_id(key)
        print(f"{name:60} key id {kid}  entries {usage.pop(kid, 0)}")
    for kid, n in usage.items():
        print(f"MISSING key id {kid}: {n} entries cannot be decrypted; restore it from backup")
    return 1 if usage else 0

# ---- edc study: eCRF metadata import/export (issue 3) -------------------------------------------

def _operator() -> Any:
    import getpass

    from studies.registry.service import operator_actor

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "operator"
    return operator_actor(name)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _print_import(result: Any) -> None:
    for f in result.forms:
        print(f"{result.study_code}: form {f['form']} version {f['version']} ({f['status']}, "
              f"{f['items']} items)")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if result.study_created:
        print(f"study {result.study_code} did not exist and was created as a draft")


def cmd_study_import_redcap(settings: Settings, args: argparse.Namespace) -> int:
    from studies.forms import service as forms

    raw = _read(args.file)
    try:
        csv_text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(f"{args.file} is not UTF-8 text (byte {exc.start})") from exc
    state = _state(settings)
    with state.sessions() as session, session.begin():
        result = forms.import_redcap(session, state.ledger, actor=_operator(),
                                     study_code=args.study, text=csv_text)
    _print_import(result)
    return 0


def cmd_study_import_odm(settings: Settings, args: argparse.Namespace) -> int:
    from studies.forms import service as forms

    raw = _read(args.file)
    state = _state(settings)
    with state.sessions() as session, session.begin():
        result = forms.import_odm(session, state.ledger, actor=_operator(),
                                  study_code=args.study, data=raw)
    _print_import(result)
    return 0


def cmd_study_export_odm(settings: Settings, args: argparse.Namespace) -> int:
    import datetime as dt

    from studies.forms import service as forms

    state = _state(settings)
    with state.sessions() as session, session.begin():
        data = forms.export_odm(session, state.ledger, actor=_operator(),
                                study_code=args.study, now=dt.datetime.now(dt.UTC))
    if args.out:
        try:
            Path(args.out).write_bytes(data)
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        print(f"wrote ODM 1.3.2 metadata of {args.study} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


# ── Data entry: bulk import, exports, current-table proof (issue 5; docs/investigators.md) ──


def cmd_entry_import(settings: Settings, args: argparse.Namespace) -> int:
    """Stream a REDCap flat CSV into the study in ONE transaction: all rows or none."""
    from studies.entry import bulk_import

    state = _state(settings)

    def progress(rows: int) -> None:
        print(f"edc: {rows} rows read", file=sys.stderr, flush=True)

    try:
        fh = open(args.file, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    with fh, state.sessions() as session:
        try:
            with session.begin():
                actor = _custodian(session, args.by)
                out = bulk_import.import_redcap_csv(session, state.ledger, actor=actor,
                                                    study_code=args.study, lines=fh,
                                                    progress=progress)
        except bulk_import.ImportRefused as exc:
            for e in exc.errors:
                print(f"row {e['row']}, column {e['column']} ({e['field']}): {e['message']}",
                      file=sys.stderr)
            raise CliError(f"import refused: {len(exc.errors)} error(s); nothing was "
                           "written") from None
    print(f"imported batch {out['batch']}: {out['rows']} rows, {out['records']} form "
          f"records, {out['values']} values (sha256 {out['sha256']})")
    return 0


def cmd_entry_export_odm(settings: Settings, args: argparse.Namespace) -> int:
    from studies.entry import odm_export

    state = _state(settings)
    with state.sessions() as session, session.begin():
        data = odm_export.export_clinical_odm(
            session, state.ledger, actor=_custodian(session, args.by), study_code=args.study,
            subjects=args.subject or None, form_names=args.form or None)
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


def cmd_entry_export_csv(settings: Settings, args: argparse.Namespace) -> int:
    from studies.entry import odm_export

    state = _state(settings)
    with state.sessions() as session, session.begin():
        text = odm_export.export_form_csv(session, state.ledger,
                                          actor=_custodian(session, args.by),
                                          study_code=args.study, form_name=args.form)
    _write(args.out, text)
    return 0


def cmd_entry_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Prove that the current-values table equals what the value versions and the ledger
    say (read-only)."""
    from studies.entry import service as entry

    state = _state(settings)
    with state.sessions() as session:
        problems = entry.verify_current(session, study_code=args.study)
    for line in problems[:200]:
        print(line)
    print("current values match the versions and the ledger" if not problems
          else f"{len(problems)} mismatch(es)")
    return 1 if problems else 0


# ── Extracts (issue 9) ───────────────────────────────────────────────────────────────────────

def cmd_receive(_settings: Settings, args: argparse.Namespace) -> int:
    """Sponsor side: verify the signature, decrypt, check every hash, unpack."""
    from pathlib import Path

    from studies.extracts import package as pkg

    try:
        identity = Path(args.identity).read_text()
        signer = Path(args.signer).read_text()
    except OSError as e:
        raise CliError(f"cannot read {e.filename}: {e.strerror}") from None
    try:
        m = pkg.receive(Path(args.package), identity=identity, signer_pub=signer,
                        out=Path(args.out))
    except pkg.PackageError as e:
        raise CliError(f"REFUSED: {e}") from None
    print(f"verified extract {m['extract_id']} ({m['tier'].upper()}, study {m['study']}): "
          f"{len(m['files'])} files, {m['rows']} rows, snapshot at ledger size "
          f"{m['snapshot']['ledger_seq']}; use until {m['expiry']}, destruction certificate "
          f"due {m['destruction_certificate_due']} -> {args.out}")
    return 0


def cmd_extract_build(settings: Settings, args: argparse.Namespace) -> int:
    """Build queued extracts now (the web server's worker does this in the background)."""
    from edc.jobs.extracts import run_one
    from studies.extracts.build import BuildKeys
    from studies.extracts.models import ExtractRequest

    state = _state(settings)
    keys = BuildKeys(deid_key=state.keys.deid_key, signing_key=state.keys.signing_key,
                     code_index=state.keys.code_index_keys())
    with state.sessions() as s:
        req = s.get(ExtractRequest, args.request_id)
        if req is None:
            raise CliError(f"no extract request {args.request_id}")
        if req.build_state != "queued":
            raise CliError(f"extract {args.request_id} is {req.build_state}; queue it first")
    ok = run_one(state.sessions, state.ledger, request_id=args.request_id, keys=keys,
                 out_dir=settings.extract_dir)
    with state.sessions() as s:
        req = s.get(ExtractRequest, args.request_id)
        assert req is not None
        print(f"{req.id}: {req.build_state}" + (f" — {req.build_error}" if req.build_error
                                                 else f", package sha256 {req.package_sha256}"))
    return 0 if ok else 1


def cmd_keys_export_signing_pub(settings: Settings, args: argparse.Namespace) -> int:
    """The hospital's public key in minisign format, for sponsors (minisign -p)."""
    from pathlib import Path

    from studies.extracts import package as pkg

    keys = keyring.load(settings.key_dir)
    text = pkg.public_key_text(keys.signing_key)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edc", description="Clinical-research EDC (GB/T 39725-2020)")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[Settings, argparse.Namespace], int], help_: str,
            parent: Any = sub) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    add("init", cmd_init, "create the key directory if absent and migrate the database")
    add("migrate", cmd_migrate, "apply database migrations")
    add("demo", cmd_demo, "load the demo study and demo accounts (safe to run twice)")
    s = add("serve", cmd_serve, "serve the web application")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)

    audit = sub.add_parser("audit", help="verify, checkpoint and prove the audit ledger")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    v = add("verify", cmd_audit_verify, "recompute the chain, the tree and every checkpoint",
            asub)
    v.add_argument("--jobs", type=int, default=None,
                   help="worker processes recomputing the leaf hashes beside the main pass "
                   "(default: one per core; 1: everything in one process)")
    c = add("checkpoint", cmd_audit_checkpoint, "sign a checkpoint of the ledger now", asub)
    c.add_argument("--reason", default="manual")
    e = add("export-checkpoints", cmd_audit_export,
            "write every signed checkpoint and the verifier key to a directory", asub)
    e.add_argument("--out", required=True)
    r = add("redact", cmd_audit_redact,
            "redact an entry's payload (identity typed into the wrong field)", asub)
    r.add_argument("seq", type=int)
    r.add_argument("--by", required=True, help="the custodian's username")
    r.add_argument("--reason", required=True)
    proof = asub.add_parser("proof", help="print an RFC 9162 proof as JSON")
    psub = proof.add_subparsers(dest="proof_command", required=True)
    i = add("inclusion", cmd_proof_inclusion, "prove entry SEQ is in the tree of size N", psub)
    i.add_argument("seq", type=int)
    i.add_argument("--size", type=int, required=True)
    i.add_argument("--out")
    k = add("consistency", cmd_proof_consistency, "prove size M is a prefix of size N", psub)
    k.add_argument("--from", dest="from_", type=int, required=True)
    k.add_argument("--to", type=int, required=True)
    k.add_argument("--out")
    cp = add("check-proof", cmd_check_proof,
             "verify a proof offline with only the verifier key", asub)
    cp.add_argument("proof")
    cp.add_argument("--vkey", required=True, help="verifier-key.txt from export-checkpoints")
    acc = sub.add_parser("accounts", help="accounts: permission table, unlock, reset TOTP")
    accsub = acc.add_subparsers(dest="accounts_command", required=True)
    pm = add("permissions", cmd_accounts_permissions,
             "render the permission table (docs/permissions.md) from the code", accsub)
    pm.add_argument("--out")
    for name, fn, text in (("unlock", cmd_accounts_unlock, "unlock a locked account"),
                           ("reset-second-factor", cmd_accounts_reset_totp,
                            "clear a user's TOTP and recovery codes (lost phone)")):
        ap = add(name, fn, text, accsub)
        ap.add_argument("username")
        ap.add_argument("--by", required=True, help="the administrator's username")


    keys = sub.add_parser("keys", help="manage the code-index keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kr = add("rotate-code-index", cmd_keys_rotate_code_index,
             "re-encrypt the whole code index under a new key and retire the old one", ksub)
    kr.add_argument("--by", required=True, help="the code-index custodian's username")
    add("status", cmd_keys_status, "code-index keys in the key directory and their use", ksub)

    study = sub.add_parser("study", help="import and export eCRF metadata of a study")
    ssub = study.add_subparsers(dest="study_command", required=True)
    ir = add("import-redcap", cmd_study_import_redcap,
             "import the forms of a REDCap data dictionary (CSV) as draft versions", ssub)
    ir.add_argument("file")
    ir.add_argument("--study", required=True, help="the protocol number (created as a draft "
                    "if it does not exist)")
    io = add("import-odm", cmd_study_import_odm,
             "import the forms and events of an ODM 1.3.2 MetaDataVersion", ssub)
    io.add_argument("file")
    io.add_argument("--study", required=True, help="the protocol number")
    eo = add("export-odm", cmd_study_export_odm,
             "export the study's metadata as ODM 1.3.2 (standard output or --out)", ssub)
    eo.add_argument("--study", required=True, help="the protocol number")
    eo.add_argument("--out", help="write to this file instead of standard output")

    ent = sub.add_parser("entry", help="data entry: bulk import, exports, consistency proof")
    esub = ent.add_subparsers(dest="entry_command", required=True)
    ei = add("import-csv", cmd_entry_import,
             "import a REDCap flat CSV (all rows or none; progress on stderr)", esub)
    ei.add_argument("file")
    ei.add_argument("--study", required=True)
    ei.add_argument("--by", required=True, help="the importing user (PI or data manager)")
    eo = add("export-odm", cmd_entry_export_odm,
             "write ODM 1.3.2 ClinicalData with audit records", esub)
    eo.add_argument("--study", required=True)
    eo.add_argument("--by", required=True)
    eo.add_argument("--subject", action="append", help="only this subject (repeatable)")
    eo.add_argument("--form", action="append", help="only this form (repeatable)")
    eo.add_argument("--out", required=True)
    ec = add("export-csv", cmd_entry_export_csv, "write one form as CSV", esub)
    ec.add_argument("--study", required=True)
    ec.add_argument("--by", required=True)
    ec.add_argument("--form", required=True)
    ec.add_argument("--out")
    ev = add("verify", cmd_entry_verify,
             "prove the current-values table equals the versions and the ledger", esub)
    ev.add_argument("--study")

    ks = add("export-signing-pub", cmd_keys_export_signing_pub,
             "write the hospital's public key in minisign format (for sponsors)", ksub)
    ks.add_argument("--out")

    rc = add("receive", cmd_receive,
             "sponsor side: verify, decrypt and unpack an extract package")
    rc.add_argument("package")
    rc.add_argument("--identity", required=True, help="age identity file (age-keygen)")
    rc.add_argument("--signer", required=True, help="the hospital's minisign public key")
    rc.add_argument("--out", required=True, help="directory to unpack into (new or empty)")
    ext = sub.add_parser("extract", help="extracts for sponsors")
    esub = ext.add_subparsers(dest="extract_command", required=True)
    eb = add("build", cmd_extract_build, "build a queued extract now", esub)
    eb.add_argument("request_id")

    lk = sub.add_parser("locks", help="database lock and unlock (issue 7)")
    lksub = lk.add_subparsers(dest="locks_command", required=True)
    add("relock-expired", cmd_locks_relock_expired,
        "re-lock every unlock whose period has ended", lksub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        return int(args.fn(settings, args))
    except (CliError, DatabaseError, keyring.KeyringError) as exc:
        print(f"edc: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"edc: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:  # settings validation
        print(f"edc: invalid setting: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
