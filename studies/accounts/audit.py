"""The auditor's view of the ledger: filter by user, action, study, subject code and time;
export the whole trail or a filter as CSV or CDISC ODM 1.3.2 ``AuditRecords``, streamed in
batches (constant memory however many entries). Only the auditor role reads it (``audit.read``);
an export is itself a ledger entry.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Change, Ledger, canonical_ts
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.roles import Perm, permissions_of

COLUMNS = ("seq", "ts", "actor", "action", "entity_type", "entity_id", "study", "subject",
           "version", "outcome", "client", "reason", "changes")
FORMATS = ("csv", "odm")
MAX_PAGE = 500


@dataclass(frozen=True)
class AuditFilter:
    user: str | None = None
    action: str | None = None
    study: str | None = None
    subject: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def describe(self) -> str:
        parts = [f"{k}={v.isoformat() if isinstance(v, dt.datetime) else v}"
                 for k, v in self.__dict__.items() if v is not None]
        return ", ".join(parts) or "all"


def _allowed_studies(actor: Actor, f: AuditFilter) -> set[str] | None:
    require(actor, Perm.AUDIT_READ, study=f.study)
    studies: set[str] = set()
    for r, s, _x in actor.scope_triples():
        if Perm.AUDIT_READ in permissions_of({r}):
            if s is None:
                return None
            studies.add(s)
    return studies


def _statement(actor: Actor, f: AuditFilter) -> Select[Any]:
    if f.since and f.until and f.since > f.until:
        raise InvalidInput(_("'since' is after 'until'"), field="since")
    allowed = _allowed_studies(actor, f)
    c = LedgerEntry.__table__.c  # type: ignore[attr-defined]
    stmt = select(*(c[n] for n in COLUMNS))
    if f.user:
        stmt = stmt.where(c.actor == f.user)
    if f.action:
        if f.action.endswith("*"):
            stmt = stmt.where(c.action.startswith(f.action[:-1], autoescape=True))
        else:
            stmt = stmt.where(c.action == f.action)
    if f.study:
        stmt = stmt.where(c.study == f.study)
    elif allowed is not None:
        stmt = stmt.where(c.study.in_(sorted(allowed)))
    if f.subject:
        stmt = stmt.where(c.subject == f.subject)
    if f.since:
        stmt = stmt.where(c.ts >= canonical_ts(f.since))
    if f.until:
        stmt = stmt.where(c.ts <= canonical_ts(f.until))
    return stmt


def search(session: Session, *, actor: Actor, filters: AuditFilter,
           before_seq: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """One page of matching entries, newest first; page on with ``before_seq``."""
    limit = max(1, min(limit, MAX_PAGE))
    c = LedgerEntry.__table__.c  # type: ignore[attr-defined]
    stmt = _statement(actor, filters)
    if before_seq is not None:
        stmt = stmt.where(c.seq < before_seq)
    rows = session.execute(stmt.order_by(c.seq.desc()).limit(limit)).all()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def _batches(session: Session, stmt: Select[Any], batch: int) -> Iterator[Sequence[Row[Any]]]:
    """Keyset pagination on seq: each batch is one small query, nothing accumulates."""
    c = LedgerEntry.__table__.c  # type: ignore[attr-defined]
    last = 0
    while True:
        rows = session.execute(stmt.where(c.seq > last).order_by(c.seq).limit(batch)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]
        if len(rows) < batch:
            return


def export(session: Session, ledger: Ledger, *, actor: Actor, filters: AuditFilter, fmt: str,
           batch: int = 5000, now: dt.datetime | None = None) -> Iterator[bytes]:
    """Record the export, then return an iterator of encoded chunks (one per batch)."""
    created = record_export(session, ledger, actor=actor, filters=filters, fmt=fmt, now=now)
    session.flush()
    return export_chunks(session, actor=actor, filters=filters, fmt=fmt, created=created,
                         batch=batch)


def record_export(session: Session, ledger: Ledger, *, actor: Actor, filters: AuditFilter,
                  fmt: str, now: dt.datetime | None = None) -> dt.datetime:
    """The export's ledger entry; the web layer commits it before the rows stream out (from
    ``export_chunks`` in a read-only session of their own)."""
    if fmt not in FORMATS:
        raise InvalidInput(_("format: one of {FORMATS}").format(FORMATS=', '.join(FORMATS)),
                           field="format")
    _allowed_studies(actor, filters)  # refused now (403), not once the rows are streaming
    ledger.append(session, actor=actor.username, action=Action.AUDIT_EXPORT,
                  entity_type="ledger", entity_id=fmt, study=filters.study,
                  subject=filters.subject, client=actor.client,
                  reason=f"filter: {filters.describe()}"[:500],
                  changes=[Change("format", None, fmt)])
    return now or dt.datetime.now(dt.UTC)


def export_chunks(session: Session, *, actor: Actor, filters: AuditFilter, fmt: str,
                  created: dt.datetime, batch: int = 5000) -> Iterator[bytes]:
    """The rows the actor may read, encoded in chunks of ``batch`` entries."""
    stmt = _statement(actor, filters)
    if fmt == "csv":
        return _csv(session, stmt, batch)
    return _odm(session, stmt, batch, filters, created)


def _csv(session: Session, stmt: Select[Any], batch: int) -> Iterator[bytes]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    yield ("\ufeff" + buf.getvalue()).encode()
    for rows in _batches(session, stmt, batch):
        buf.seek(0)
        buf.truncate()
        for r in rows:
            w.writerow(["" if v is None else _csv_safe(v) for v in r])
        yield buf.getvalue().encode()


def _csv_safe(v: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection) in text cells."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"


def _odm(session: Session, stmt: Select[Any], batch: int, f: AuditFilter,
         created: dt.datetime) -> Iterator[bytes]:
    """ODM 1.3.2: one ClinicalData holding AuditRecords; each AuditRecord has UserRef,
    LocationRef (the client address), DateTimeStamp, ReasonForChange and a SourceID that
    carries the ledger entry (sequence, action, target, outcome, changes) as JSON."""
    study = f.study or "EDC-ALL"
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ODM xmlns="{ODM_NS}" ODMVersion="1.3.2" FileType="Snapshot" '
        f'FileOID={quoteattr("EDC.AUDIT." + created.strftime("%Y%m%dT%H%M%S"))} '
        f'CreationDateTime="{created.strftime("%Y-%m-%dT%H:%M:%S+00:00")}" '
        'Originator="EDC (GB/T 39725-2020)">\n'
        f'<ClinicalData StudyOID={quoteattr(study)} MetaDataVersionOID="MDV.1">\n'
        '<AuditRecords>\n').encode()
    for rows in _batches(session, stmt, batch):
        parts = []
        for r in rows:
            d = dict(zip(COLUMNS, r, strict=True))
            source = json.dumps({k: d[k] for k in ("seq", "action", "entity_type", "entity_id",
                                                   "study", "subject", "version", "outcome",
                                                   "changes")},
                                ensure_ascii=False, separators=(",", ":"))
            ts = d["ts"].replace("Z", "+00:00")
            parts.append(
                f'<AuditRecord ID="A{d["seq"]}" EditPoint="DBAudit">'
                f'<UserRef UserOID={quoteattr(d["actor"])}/>'
                f'<LocationRef LocationOID={quoteattr(d["client"] or "unknown")}/>'
                f'<DateTimeStamp>{ts}</DateTimeStamp>'
                + (f'<ReasonForChange>{escape(d["reason"])}</ReasonForChange>'
                   if d["reason"] else "")
                + f'<SourceID>{escape(source)}</SourceID></AuditRecord>\n')
        yield "".join(parts).encode()
    yield b"</AuditRecords>\n</ClinicalData>\n</ODM>\n"
