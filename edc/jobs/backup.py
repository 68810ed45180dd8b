"""Encrypted, signed backups of the database, their restore, and the restore drill.

A backup is one file: an age-encrypted (X25519, to an offline recipient key) tar archive of
``manifest.json``, ``manifest.sig``, the database snapshot (``database.sqlite3`` taken with
SQLite's online backup API, or ``database.pgdump``, ``pg_dump`` custom format) and the
uploaded files of eCRF file fields (``files/<2 hex>/<sha256>``, listed after the snapshot, so
every file the snapshot names is in). The manifest names the database kind, the schema
revision, the ledger checkpoint signed just before the snapshot began (every entry up to it is
in the snapshot), the snapshot's SHA-256 and the number, size and digest of the files' hashes;
it is signed with the ledger's Ed25519 key. The key directory is never in a backup. A restore
puts each file back only if its bytes match its name, and reports any file the restored
database names that is not there.

Everything streams through files (never a whole database in memory); the plaintext snapshot
exists only in a private (0700) scratch directory that is removed afterwards.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from nacl.exceptions import BadSignatureError
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from audit_trail import witness
from audit_trail.errors import LedgerIntegrityError
from edc.db import make_engine, normalise_url
from edc.jobs.checkpoints import checkpoint_now
from edc.state import AppState
from studies.entry import files as entry_files
from studies.entry.models import EntryFile
from studies.extracts.package import TarStream, read_identity, sha256_file
from studies.kernel.i18n import _

FORMAT = "edc-backup-v1"
CHUNK = 1 << 20
MEMBERS = ("manifest.json", "manifest.sig")
FILE_MEMBER = re.compile(r"files/([0-9a-f]{2})/(\1[0-9a-f]{62})")


def files_digest(hashes: list[str]) -> str:
    """The manifest's digest of the uploaded files it holds: SHA-256 of their sorted hashes,
    one per line (a file left out of, or slipped into, a package changes it)."""
    return hashlib.sha256("".join(f"{h}\n" for h in sorted(hashes)).encode()).hexdigest()


class BackupError(Exception):
    """A backup could not be written, or a package is refused; the message says why."""


@contextmanager
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="edc-backup-"))
    os.chmod(d, 0o700)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def libpq_url(url: str) -> str:
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _snapshot(url: str, into: Path) -> str:
    """Write a consistent snapshot of the database at ``url`` into ``into``; its file name."""
    u = make_url(normalise_url(url))
    if u.get_backend_name() == "sqlite":
        name = "database.sqlite3"
        src = sqlite3.connect(f"file:{u.database}?mode=ro", uri=True)
        dst = sqlite3.connect(into / name)
        try:
            src.backup(dst)  # the online backup API: one snapshot, no write lock under WAL
        finally:
            dst.close()
            src.close()
        with sqlite3.connect(into / name) as conn:
            conn.execute("PRAGMA journal_mode=DELETE")
        return name
    name = "database.pgdump"
    done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--file",
                           str(into / name), libpq_url(url)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    return name


def _schema_revision(state: AppState) -> str:
    with state.engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


def create(state: AppState, *, out: Path, recipient: str) -> BackupResult:
    """Write an encrypted, signed backup of the live database to ``out`` (mode 0600)."""
    try:
        rec = pyrage.x25519.Recipient.from_str(recipient.strip())
    except Exception:
        raise BackupError("recipient: not an age public key (age1…, from age-keygen -y)") \
            from None
    if out.exists():
        raise BackupError(f"{out} exists; a backup never overwrites a file")
    # Sign the head first: every entry up to this checkpoint is in the snapshot that follows.
    checkpoint_now(state.sessions, state.ledger, reason="backup")
    with state.sessions() as s:
        cp = witness.latest_checkpoint(s)
        cp_size, cp_note = (cp.tree_size, cp.note) if cp is not None else (0, "")
    with scratch() as tmp:
        name = _snapshot(state.settings.database_url, tmp)
        stored = entry_files.stored_files(state.settings.upload_dir)  # after the snapshot
        manifest = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "database": state.engine.dialect.name,
            "schema_revision": _schema_revision(state),
            "ledger_size": cp_size,
            "checkpoint": cp_note,
            "file": name,
            "bytes": (tmp / name).stat().st_size,
            "sha256": sha256_file(tmp / name),
            "files": len(stored),
            "files_bytes": sum(p.stat().st_size for _h, p in stored),
            "files_sha256": files_digest([h for h, _p in stored]),
            "signer": state.keys.signer.vkey,
        }
        raw = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        (tmp / "manifest.json").write_bytes(raw)
        (tmp / "manifest.sig").write_text(
            base64.b64encode(state.keys.signing_key.sign(raw).signature).decode() + "\n")
        partial = out.with_name(out.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            members = TarStream(tmp, [*MEMBERS, name],
                                more=[(f"files/{h[:2]}/{h}", p) for h, p in stored])
            with io.BufferedReader(members, CHUNK) as r, \
                    os.fdopen(fd, "wb") as w:
                pyrage.encrypt_io(r, w, [rec])
                w.flush()
                os.fsync(w.fileno())
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupResult(out, manifest)


def _open_package(path: Path, identity_text: str, into: Path, state: AppState
                  ) -> dict[str, Any]:
    """Decrypt and unpack ``path`` into ``into``; check the manifest's signature and the
    snapshot's hash. Any changed byte is refused."""
    try:
        ident = read_identity(identity_text)
    except Exception as exc:
        raise BackupError(str(exc)) from None
    tar_path = into / "package.tar"
    try:
        reader = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    try:
        with reader as r, open(tar_path, "wb") as w:
            pyrage.decrypt_io(r, w, [ident])
    except Exception:
        raise BackupError(_("REFUSED: the package does not decrypt with this identity, or a byte "
                            "of it was changed")) from None
    wanted = None
    held: list[str] = []
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            for m in tar:
                name = m.name.removeprefix("extract/")
                stored = FILE_MEMBER.fullmatch(name)
                if stored and m.isfile():
                    (into / "files" / stored[1]).mkdir(mode=0o700, parents=True, exist_ok=True)
                    held.append(stored[2])
                elif "/" in name or not m.isfile() or not (
                        name in MEMBERS or name.startswith("database.")):
                    raise BackupError(f"REFUSED: unexpected member {m.name!r}")
                src = tar.extractfile(m)
                assert src is not None
                with open(into / name, "wb") as fh:
                    shutil.copyfileobj(src, fh, CHUNK)
        raw = (into / "manifest.json").read_bytes()
        sig = base64.b64decode((into / "manifest.sig").read_text().strip(), validate=True)
        manifest = json.loads(raw)
        wanted = into / str(manifest["file"])
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise BackupError(f"REFUSED: the package is malformed: {exc}") from None
    try:
        state.keys.signing_key.verify_key.verify(raw, sig)
    except BadSignatureError:
        raise BackupError(_("REFUSED: the manifest's signature does not verify with this "
                            "installation's key")) from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"REFUSED: unknown backup format {manifest.get('format')!r}")
    if not wanted.exists() or sha256_file(wanted) != manifest["sha256"]:
        raise BackupError(_("REFUSED: the database snapshot does not match the manifest's SHA-256"))
    # a backup made before files were kept names none
    if (len(held) != manifest.get("files", 0)
            or files_digest(held) != manifest.get("files_sha256", files_digest([]))):
        raise BackupError(_("REFUSED: the uploaded files in the package are not the ones its "
                            "manifest lists"))
    return dict(manifest)


def _target_is_empty(url: str) -> bool:
    u = make_url(normalise_url(url))
    if u.get_backend_name() == "sqlite":
        p = Path(u.database or "")
        return not p.exists() or p.stat().st_size == 0
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema = 'public'")).scalar_one()
    except OperationalError as exc:
        raise BackupError(f"cannot reach the target database "
                          f"{u.render_as_string(hide_password=True)}: create it (empty) first"
                          ) from exc
    finally:
        engine.dispose()
    return int(n) == 0


def _load(snapshot: Path, kind: str, url: str) -> None:
    u = make_url(normalise_url(url))
    if kind != u.get_backend_name():
        raise BackupError(f"REFUSED: a {kind} backup cannot be restored into "
                          f"{u.get_backend_name()}")
    if kind == "sqlite":
        target = Path(u.database or "")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as w, open(snapshot, "rb") as r:
            shutil.copyfileobj(r, w, CHUNK)
            w.flush()
            os.fsync(w.fileno())
        return
    done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
                           "--dbname", libpq_url(url), str(snapshot)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    lines: list[str]
    problems: list[str]


def restore(state: AppState, *, package: Path, identity_text: str, target_url: str,
            files_into: Path, outside: list[witness.Witnessed] | None = None,
            jobs: int | None = 1) -> RestoreReport:
    """Restore ``package`` into the empty database ``target_url`` and its uploaded files into
    the store ``files_into``, then verify the ledger there against the manifest's checkpoint,
    the current values against the ledger, and that every file the database names is in the
    store with the bytes its SHA-256 names."""
    from edc.audit import verify_ledger
    from studies.entry import reading as entry_reading

    if not _target_is_empty(target_url):
        raise BackupError(_("REFUSED: the target database is not empty; restore only into a new, "
                            "empty database"))
    problems: list[str] = []
    with scratch() as tmp:
        manifest = _open_package(package, identity_text, tmp, state)
        _load(tmp / manifest["file"], manifest["database"], target_url)
        placed = 0
        for member in sorted((tmp / "files").glob("*/*")):
            if sha256_file(member) != member.name:
                problems.append(f"uploaded file {member.name}: its bytes do not match its "
                                "SHA-256; not restored")
            else:
                entry_files.store_copy(files_into, member.name, member)
                placed += 1
    vkey = state.keys.signer.vkey
    lines = [f"restored a {manifest['database']} backup of {manifest['created_at']} (schema "
             f"{manifest['schema_revision']}, ledger checkpoint {manifest['ledger_size']})",
             f"{placed} uploaded file(s) restored into {files_into}, each matching its SHA-256"]
    try:
        report = verify_ledger(target_url, vkey=vkey, jobs=jobs)
        lines.append(report.summary())
    except LedgerIntegrityError as exc:
        problems.append(str(exc))
    engine = make_engine(target_url)
    try:
        from edc.db import read_session_factory

        with read_session_factory(engine)() as s:
            held = list(outside or [])
            if manifest["checkpoint"]:
                held.append(witness.read_witnessed(
                    manifest["checkpoint"], source="the backup's manifest", log_vkey=vkey))
            problems += witness.compare(s, held, vkey=vkey)
            current = entry_reading.verify_current(s)
            problems += current[:20]
            if not current:
                lines.append("current values match the versions and the ledger")
            named = sorted(set(s.execute(select(col(EntryFile.sha256))).scalars()))
            missing = [h for h in named
                       if not entry_files.stored_path(files_into, h).is_file()]
            problems += [f"uploaded file {h}: named by the database, not in the backup"
                         for h in missing[:20]]
            if named and not missing:
                lines.append(f"every uploaded file the database names is there ({len(named)})")
    finally:
        engine.dispose()
    return RestoreReport(manifest, lines, problems)
