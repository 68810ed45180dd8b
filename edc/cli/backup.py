"""``edc backup`` (encrypted, signed snapshot), ``edc backup drill`` and ``edc restore``."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from edc.cli.common import CliError, add, load_state, register_state
from edc.db import normalise_url
from edc.jobs import backup
from edc.settings import Settings
from edc.state import build_state
from studies.kernel.events import Action


def _read(path_or_key: str, what: str) -> str:
    if path_or_key.startswith("age1"):
        return path_or_key
    try:
        return Path(path_or_key).read_text()
    except OSError as exc:
        raise CliError(f"cannot read the {what} {exc.filename}: {exc.strerror}") from None


def _recipient(arg: str) -> str:
    lines = [ln.strip() for ln in _read(arg, "recipient").splitlines()
             if ln.strip().startswith("age1")]
    if not lines:
        raise CliError("recipient: no age public key (age1…) found; make one with age-keygen "
                       "on the offline machine and give its public key")
    return lines[0]


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    if args.backup_command == "drill":
        return cmd_drill(settings, args)
    if not args.out or not args.recipient:
        raise CliError("edc backup needs --out FILE and --recipient KEY")
    state = load_state(settings)
    started = time.monotonic()
    try:
        result = backup.create(state, out=Path(args.out), recipient=_recipient(args.recipient))
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    m = result.manifest
    with state.sessions() as s, s.begin():
        state.ledger.append(s, actor="system", action=Action.BACKUP_CREATE, entity_type="backup",
                            entity_id=m["sha256"][:16], client="cli",
                            reason=f"{m['database']} backup at ledger size {m['ledger_size']}")
    print(f"backup written to {result.path} (mode 0600, {result.path.stat().st_size} bytes, "
          f"{m['database']}, ledger checkpoint {m['ledger_size']}, snapshot sha256 "
          f"{m['sha256'][:16]}…) in {time.monotonic() - started:.1f} s")
    return 0


def _restore_and_report(settings: Settings, args: argparse.Namespace, target_url: str,
                        files_into: Path, package: Path, identity: str,
                        outside: list[Any]) -> int:
    from edc.audit import default_jobs

    live = build_state(settings, check=False)
    try:
        report = backup.restore(live, package=package, identity_text=identity,
                                target_url=target_url, files_into=files_into,
                                outside=outside,
                                jobs=args.jobs or default_jobs())
    except backup.BackupError as exc:
        live.engine.dispose()
        raise CliError(str(exc)) from None
    live.engine.dispose()
    for line in report.lines:
        print(line)
    for p in report.problems:
        print(f"RESTORE NOT VERIFIED: {p}", file=sys.stderr)
    return 1 if report.problems else 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from edc.cli.audit import _witnessed

    state = build_state(settings, check=False)
    outside = _witnessed(settings, args, state.keys.signer.vkey) if args.witness else []
    state.engine.dispose()
    code = _restore_and_report(settings, args, settings.database_url, settings.upload_dir,
                               Path(args.package), _read(args.identity, "identity"), outside)
    restored = build_state(settings)
    register_state(restored)
    with restored.sessions() as s, s.begin():
        restored.ledger.append(
            s, actor="system", action=Action.BACKUP_RESTORE, entity_type="backup",
            entity_id=Path(args.package).name[:200], client="cli",
            outcome="success" if code == 0 else "failure",
            reason="restored and verified" if code == 0 else "restored; verification failed")
    return code


def _scratch_url(url: str, tmp: Path) -> tuple[str, Any]:
    u = make_url(normalise_url(url))
    if u.get_backend_name() == "sqlite":
        return f"sqlite:///{tmp / 'drill.sqlite3'}", None
    name = f"{u.database}_drill_{uuid.uuid4().hex[:8]}"
    admin = create_engine(u.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return u.set(database=name).render_as_string(hide_password=False), (admin, name)


def cmd_drill(settings: Settings, args: argparse.Namespace) -> int:
    """Backup → restore into a scratch database → verify → report, recorded in the ledger."""
    if not args.recipient or not args.identity:
        raise CliError("edc backup drill needs --recipient KEY and --identity FILE")
    state = load_state(settings)
    started = time.monotonic()
    with backup.scratch() as tmp:
        package = tmp / "drill.age"
        try:
            made = backup.create(state, out=package, recipient=_recipient(args.recipient))
        except backup.BackupError as exc:
            raise CliError(str(exc)) from None
        target, pg = _scratch_url(settings.database_url, tmp)
        try:
            code = _restore_and_report(settings, args, target, tmp / "files", package,
                                       _read(args.identity, "identity"), [])
        except CliError as exc:
            print(f"DRILL FAILED: {exc}", file=sys.stderr)
            code = 1
        finally:
            if pg is not None:
                admin, name = pg
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    took = time.monotonic() - started
    verdict = "passed" if code == 0 else "FAILED"
    summary = (f"restore drill {verdict}: backup at ledger size "
               f"{made.manifest['ledger_size']} restored into a scratch database and verified "
               f"in {took:.1f} s")
    with state.sessions() as s, s.begin():
        state.ledger.append(s, actor="system", action=Action.BACKUP_DRILL, entity_type="backup",
                            entity_id=made.manifest["sha256"][:16], client="cli",
                            outcome="success" if code == 0 else "failure", reason=summary)
    print(summary)
    return code


def register(sub: Any) -> None:
    b = add(sub, "backup", cmd_backup,
            "write an encrypted, signed backup (or: edc backup drill)")
    b.add_argument("--out", help="the backup file to write (never overwritten)")
    b.add_argument("--recipient", help="age public key (age1…) or a file holding it")
    b.add_argument("--jobs", type=int, default=None, help=argparse.SUPPRESS)
    bsub = b.add_subparsers(dest="backup_command")
    d = bsub.add_parser("drill", help="backup, restore into a scratch database, verify, record")
    d.add_argument("--recipient", required=True, help="age public key or a file holding it")
    d.add_argument("--identity", required=True, help="age identity file (the offline key)")
    d.add_argument("--jobs", type=int, default=None)
    r = add(sub, "restore", cmd_restore,
            "restore a backup into the empty database EDC_DATABASE_URL (and its uploaded files "
            "into EDC_UPLOAD_DIR) and verify it")
    r.add_argument("package")
    r.add_argument("--identity", required=True, help="age identity file (the offline key)")
    r.add_argument("--witness", action="append", metavar="URL",
                   help="also check the restored ledger against this witness")
    r.add_argument("--witness-key", action="append", metavar="FILE")
    r.add_argument("--against", default=None, help=argparse.SUPPRESS)
    r.add_argument("--jobs", type=int, default=None)
