"""The auditor's trail: filters, CSV and ODM 1.3.2 AuditRecords exports that are streamed in
batches, readable only by the auditor role (§11.3.4.9 b, SPEC §9)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import types

import pytest
from factories import make_user
from lxml import etree
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import audit
from studies.accounts import service as accounts
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput, PermissionDenied
from studies.kernel.roles import Role

ODM = "{http://www.cdisc.org/ns/odm/v1.3}"


def fill(session: Session, ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append(session, actor="inv.a" if i % 2 else "inv.b", action="form.save",
                      entity_type="form", entity_id=f"f{i}", study="S1" if i % 3 else "S2",
                      subject=f"S1-{i % 7:03d}", client="10.0.0.1",
                      reason="=cmd|' /C calc'!A0" if i == 1 else None)


def auditor(session: Session, ledger: Ledger, study: str | None = None) -> Actor:
    return accounts.actor_for(session, make_user(session, ledger, "aud", Role.AUDITOR,
                                                 study=study), client="10.0.0.9")


def test_filters_by_user_action_study_subject_and_time(session: Session,
                                                       ledger: Ledger) -> None:
    fill(session, ledger, 30)
    a = auditor(session, ledger)
    rows = audit.search(session, actor=a, filters=audit.AuditFilter(
        user="inv.a", study="S1", subject="S1-001", action="form.*"))
    assert rows and all((r["actor"], r["study"], r["subject"]) == ("inv.a", "S1", "S1-001")
                        for r in rows)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert audit.search(session, actor=a, filters=audit.AuditFilter(since=future)) == []
    with pytest.raises(InvalidInput):
        audit.search(session, actor=a, filters=audit.AuditFilter(since=future,
                                                                 until=future - dt.timedelta(1)))


def test_only_the_auditor_role_reads_the_trail(session: Session, ledger: Ledger) -> None:
    for role in Role:
        if role is Role.AUDITOR:
            continue
        actor = accounts.actor_for(session, make_user(session, ledger, f"u.{role.value}", role),
                                   client=None)
        with pytest.raises(PermissionDenied):
            audit.search(session, actor=actor, filters=audit.AuditFilter())


def test_a_study_auditor_sees_only_that_study(session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 12)
    a = auditor(session, ledger, study="S2")
    rows = audit.search(session, actor=a, filters=audit.AuditFilter())
    assert rows and {r["study"] for r in rows} == {"S2"}
    with pytest.raises(PermissionDenied):
        audit.search(session, actor=a, filters=audit.AuditFilter(study="S1"))


def test_csv_export_is_streamed_in_batches_and_audited(session: Session,
                                                       ledger: Ledger) -> None:
    fill(session, ledger, 2_100)
    a = auditor(session, ledger)
    chunks = audit.export(session, ledger, actor=a, filters=audit.AuditFilter(), fmt="csv",
                          batch=500)
    assert isinstance(chunks, types.GeneratorType)  # produced lazily, batch by batch
    parts = list(chunks)
    assert len(parts) >= 5  # header + one chunk per batch of 500
    rows = list(csv.DictReader(io.StringIO(b"".join(parts).decode("utf-8-sig"))))
    assert len(rows) >= 2_100 + 2  # every entry incl. account creation and the export itself
    assert [r["action"] for r in rows][-1] == "audit.export"
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    formula = [r for r in rows if r["reason"].startswith("'=")]
    assert formula, "spreadsheet formulas are neutralised"


def test_odm_export_is_well_formed_audit_records(session: Session, ledger: Ledger) -> None:
    fill(session, ledger, 20)
    a = auditor(session, ledger)
    xml = b"".join(audit.export(session, ledger, actor=a, filters=audit.AuditFilter(
        study="S1"), fmt="odm", batch=7))
    root = etree.fromstring(xml)
    assert root.tag == f"{ODM}ODM" and root.get("ODMVersion") == "1.3.2"
    records = root.findall(f"{ODM}ClinicalData/{ODM}AuditRecords/{ODM}AuditRecord")
    assert len(records) == 13 + 1  # the S1 entries of 20 (i % 3 != 0) and the export
    first = records[0]
    assert [c.tag.removeprefix(ODM) for c in first][:3] == ["UserRef", "LocationRef",
                                                           "DateTimeStamp"]
    assert first.find(f"{ODM}UserRef").get("UserOID") in ("inv.a", "inv.b")
    assert '"action":"form.save"' in first.find(f"{ODM}SourceID").text
