"""File fields (REDCap's ``file`` field type): uploads and downloads.

An upload is checked against the limits the operator set (:class:`FileLimits`: the largest
size, the types allowed — the type is read from the file's first bytes, never taken from the
client), stored outside the database under its SHA-256 (``<store>/<2 hex>/<sha256>``, files
0600 in 0700 directories; the same bytes are stored once) and recorded as an ``entry_file``
row; the field's value is that row's id, saved with the form like any value (a version, a
reason when changed). Every upload and every download is a ledger entry; a download reads
the bytes again and refuses them if their SHA-256 no longer matches."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies import guards
from studies.entry import service as entry
from studies.entry.errors import CLAUSE_ENTRY
from studies.entry.models import EntryFile
from studies.forms import service as forms
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput, NotFound, RuleViolation
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm
from studies.registry.models import Study
from studies.subjects.models import Subject

# What each allowed type looks like in its first bytes.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
KNOWN_TYPES = (*SIGNATURES, "text/plain")


@dataclass(frozen=True)
class FileLimits:
    """The operator's limits (settings ``EDC_UPLOAD_MAX_BYTES``, ``EDC_UPLOAD_TYPES``) and
    where the bytes are kept (``EDC_UPLOAD_DIR``)."""

    max_bytes: int
    types: tuple[str, ...]
    store: Path


def sniff(content: bytes) -> str | None:
    """The media type the bytes are (one of :data:`KNOWN_TYPES`), or None."""
    for media, heads in SIGNATURES.items():
        if content.startswith(heads):
            return media
    if b"\x00" not in content:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "text/plain"
    return None


STORED_NAME = re.compile(r"[0-9a-f]{64}")


def stored_path(store: Path, sha256: str) -> Path:
    """Where the bytes whose SHA-256 is ``sha256`` are kept in ``store``."""
    return store / sha256[:2] / sha256


def stored_files(store: Path) -> list[tuple[str, Path]]:
    """Every file kept in ``store``, as (SHA-256, path), in the order of their hashes. Files
    are never deleted or changed once stored, so a list taken after a database snapshot holds
    every file the snapshot names (the bytes are written before the upload commits)."""
    if not store.is_dir():
        return []
    out = []
    for sub in sorted(store.iterdir()):
        if not sub.is_dir() or len(sub.name) != 2:
            continue
        out += [(f.name, f) for f in sorted(sub.iterdir())
                if STORED_NAME.fullmatch(f.name) and f.name[:2] == sub.name and f.is_file()]
    return out


def _write(store: Path, sha256: str, chunks: Iterable[bytes]) -> None:
    target = stored_path(store, sha256)
    if target.exists():
        return
    store.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.parent.mkdir(mode=0o700, exist_ok=True)
    partial = target.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, target)


def store_copy(store: Path, sha256: str, source: Path) -> None:
    """Keep a copy of the file ``source``, whose SHA-256 the caller has checked, in ``store``
    (a restored backup's member)."""
    with open(source, "rb") as fh:
        _write(store, sha256, iter(lambda: fh.read(1 << 20), b""))


def upload(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
           subject_code: str, event_name: str, form_name: str, item: str, filename: str,
           content: bytes, limits: FileLimits, repeat: int = 1) -> EntryFile:
    """Store one file for a file field of a subject's form; returns the row whose id is the
    field's value to save. Refused (422 naming the field, nothing stored): not a file field
    of the form, empty, larger than the limit, a type not allowed; 403 outside the actor's
    sites; 423 when the form is locked (as a save would be)."""
    t = entry.resolve(session, actor=actor, perm=Perm.ENTRY_WRITE, study_code=study_code,
                      subject_code=subject_code, event_name=event_name, form_name=form_name,
                      repeat=repeat)
    guards.assert_writable(session, study_id=t.study.id, subject_id=t.subject.id,
                           form_id=t.form.id, at=None, actor=actor.username,
                           client=actor.client)
    record = entry.find_record(session, t)
    fv_id = record.form_version_id if record is not None else \
        entry.entry_version(session, t.form).id
    fields = {i.name: i for i in forms.item_rows(session, fv_id)}
    if item not in fields or fields[item].field_type != "file":
        raise InvalidInput(_("{item}: not a file field of this form").format(item=item),
                           field=item)
    if not content:
        raise InvalidInput(_("{item}: the file is empty").format(item=item), field=item)
    if len(content) > limits.max_bytes:
        raise InvalidInput(_("{item}: the file is larger than {max_bytes} bytes").format(
                               item=item, max_bytes=limits.max_bytes), field=item)
    media = sniff(content)
    if media is None or media not in limits.types:
        raise InvalidInput(_("{item}: this type of file is not allowed; allowed: {types}").format(
                               item=item, types=', '.join(limits.types)), field=item)
    name = os.path.basename(filename.replace("\\", "/")).strip()[:255] or "file"
    sha256 = hashlib.sha256(content).hexdigest()
    row = EntryFile(study_id=t.study.id, subject_id=t.subject.id, item_name=item,
                    sha256=sha256, size=len(content), media_type=media, filename=name,
                    uploaded_by=actor.username)
    session.add(row)
    session.flush()
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ENTRY_FILE_UPLOAD, entity_type="entry_file", entity_id=row.id,
                  study=t.study.code, subject=t.subject.code,
                  changes=[Change("item", None, item), Change("filename", None, name),
                           Change("sha256", None, sha256), Change("size", None, len(content)),
                           Change("media_type", None, media)])
    _write(limits.store, sha256, [content])
    return row


def describe(session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What a page shows of the files some values name (filename, size, type, hash)."""
    if not ids:
        return {}
    rows = session.execute(select(EntryFile).where(col(EntryFile.id).in_(ids))).scalars()
    return {r.id: {"id": r.id, "filename": r.filename, "size": r.size,
                   "media_type": r.media_type, "sha256": r.sha256} for r in rows}


def download(session: Session, ledger: Ledger, *, actor: Actor, study_code: str,
             file_id: str, limits: FileLimits) -> tuple[EntryFile, bytes]:
    """The file and its bytes, for a role that may read the subject's data at its site
    (audited). Refused when its bytes no longer match the SHA-256 recorded at upload."""
    row = session.get(EntryFile, file_id)
    study = session.get(Study, row.study_id) if row is not None else None
    if row is None or study is None or study.code != study_code:
        raise NotFound(_("no such file"), field="file_id")
    subject = session.get(Subject, row.subject_id)
    assert subject is not None  # a foreign key
    guards.require_for_subject(session, actor, Perm.ENTRY_READ, study=study, subject=subject)
    path = stored_path(limits.store, row.sha256)
    content = path.read_bytes() if path.exists() else b""
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise RuleViolation(_("the stored file is missing or does not match the SHA-256 recorded "
                              "at upload"),
                            field="file_id", clause=CLAUSE_ENTRY)
    ledger.append(session, actor=actor.username, client=actor.client,
                  action=Action.ENTRY_FILE_DOWNLOAD, entity_type="entry_file",
                  entity_id=row.id, study=study.code, subject=subject.code,
                  changes=[Change("sha256", None, row.sha256)])
    return row, content
