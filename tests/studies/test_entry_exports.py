"""REDCap flat-CSV bulk import (all or nothing, row/column errors, batch id as reason), ODM
1.3.2 ClinicalData with AuditRecords validated against the official schema, CSV per form."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from factories import SETUP, VITALS, approved_export, make_entry_study
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_entry import investigator, save

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.entry import bulk_import, odm_export
from studies.entry import reading as entry_reading
from studies.entry import service as entry
from studies.entry.errors import ImportRefused
from studies.entry.models import FormRecord, ValueVersion
from studies.forms import odm
from studies.kernel.actor import Actor
from studies.kernel.errors import PermissionDenied

ROOT = Path(__file__).resolve().parents[2]
STUDY = "ENT-2026-01"
NS = {"o": odm.NS}


@pytest.fixture(scope="module")
def schema() -> Any:
    return odm.load_schema()


HEADER = ("record_id,redcap_event_name,redcap_repeat_instance,visit_date,height,weight,sbp,"
          "smoker,symptoms___1,symptoms___2,symptoms___4,symptoms_other,vital_signs_complete,"
          "hba1c\n")


def run_import(session: Session, ledger: Ledger, text: str, **kw: Any) -> dict[str, Any]:
    """In a savepoint, as a request or the CLI runs it in its own transaction."""
    with session.begin_nested():
        return bulk_import.import_redcap_csv(session, ledger, actor=SETUP, study_code=STUDY,
                                             lines=io.StringIO(text), **kw)


def test_a_redcap_flat_file_imports_every_value_as_a_version_with_the_batch(
        session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger, subjects=("S01-ENT01", "S01-ENT02"))
    text = HEADER + (
        "S01-ENT01,baseline_arm_1,,2026-05-01,175,70.0,120,0,1,0,1,rash,2,6.1\n"
        "S01-ENT01,followup_arm_1,2,2026-06-01,175,71.0,121,0,0,0,0,,2,\n"
        "S01-ENT02,baseline_arm_1,,2026-05-02,160,55.5,110,1,0,1,0,,2,\n")
    with pytest.raises(ImportRefused) as e:  # smoker=1 needs cigs_per_day
        run_import(session, ledger, text)
    assert e.value.errors == [{"row": 4, "column": 1, "field": "cigs_per_day",
                               "message": "required"}]
    assert session.execute(select(func.count()).select_from(FormRecord)).scalar() == 0
    assert session.execute(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.action == "entry.import")).scalar() == 0
    seen: list[int] = []
    out = run_import(session, ledger, text.replace(",1,0,1,0,,2,\n", ",0,0,1,0,,2,\n"),
                     batch="IMP-TEST-1", progress=seen.append)
    assert (out["rows"], out["records"], out["batch"]) == (3, 4, "IMP-TEST-1")
    assert seen[-1] == 3
    reasons = set(session.execute(select(ValueVersion.reason)).scalars())
    assert reasons == {"IMP-TEST-1"}
    rec = session.execute(select(FormRecord).where(FormRecord.event_name == "followup")
                          ).scalar_one()
    assert rec.event_repeat == 2
    vals = entry.current_values(session, session.execute(select(FormRecord.id).where(
        FormRecord.event_name == "baseline", FormRecord.form_id == rec.form_id)
        .order_by(FormRecord.created_at)).scalars().first() or "")
    assert vals["symptoms"] == ["1", "4"] or vals["symptoms"] == ["2"]
    entries = session.execute(select(LedgerEntry).where(LedgerEntry.action == "entry.import")
                              ).scalars().all()
    assert len(entries) == 4 and {x.reason for x in entries} == {"IMP-TEST-1"}
    assert entry_reading.verify_current(session) == []


def test_bad_files_get_row_and_column_numbered_errors_and_write_nothing(
        session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    text = ("record_id,redcap_event_name,sbp,nonsense\n")
    with pytest.raises(ImportRefused) as e:
        run_import(session, ledger, text)
    assert e.value.errors[0] == {
        "row": 1, "column": 4, "field": "nonsense",
        "message": "no such item in the study's forms"}
    text = HEADER + ("S01-ENT01,baseline_arm_1,,2026-05-01,abc,70,120,0,0,0,0,,2,\n"
                     "S01-NOPE,baseline_arm_1,,2026-05-01,175,70,120,0,0,0,0,,2,\n"
                     "S01-ENT01,nowhere,,2026-05-01,175,70,120,0,0,0,0,,2,\n")
    with pytest.raises(ImportRefused) as e:
        run_import(session, ledger, text)
    assert [(x["row"], x["column"], x["field"]) for x in e.value.errors] == [
        (2, 5, "height"), (3, 1, "record_id"), (4, 2, "redcap_event_name")]
    assert session.execute(select(func.count()).select_from(ValueVersion)).scalar() == 0


def test_a_few_thousand_rows_stream_in_batches(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    rows = "".join(f"S01-ENT01,followup_arm_1,{n},2026-05-01,175,70.0,{100 + n % 50},0,"
                   "0,0,0,,2,\n" for n in range(1, 1201))

    def lines() -> Any:
        yield HEADER
        yield from io.StringIO(rows)

    seen: list[int] = []
    out = bulk_import.import_redcap_csv(session, ledger, actor=SETUP, study_code=STUDY,
                                        lines=lines(), progress=seen.append)
    assert out["records"] == 1200 and seen == [500, 1000, 1200]


@pytest.fixture
def entered(session: Session, ledger: Ledger) -> Actor:
    make_entry_study(session, ledger, subjects=("S01-ENT01", "S01-ENT02"))
    inv = investigator(session, ledger)
    save(session, ledger, inv, "vital_signs", {**VITALS, "symptoms": ["1", "4"],
                                                "symptoms_other": "rash"})
    save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "128", "symptoms": ["1"]},
         base=1, reasons={"sbp": "transcription_error", "symptoms": "new_source_document"})
    save(session, ledger, inv, "vital_signs", VITALS, subject="S01-ENT02")
    approved_export(session, STUDY)
    return inv


def test_odm_clinical_data_with_audit_records_validates(session: Session, ledger: Ledger,
                                                        entered: Actor,
                                                        schema: Any) -> None:
    data = odm_export.export_clinical_odm(session, ledger, actor=SETUP, study_code=STUDY)
    doc = etree.fromstring(data)
    schema.assertValid(doc)
    subjects = [s.get("SubjectKey") for s in doc.findall(".//o:SubjectData", NS)]
    assert subjects == ["S01-ENT01", "S01-ENT02"]
    sbp = doc.findall(".//o:SubjectData[@SubjectKey='S01-ENT01']//o:ItemData"
                      "[@ItemOID='I.vital_signs.sbp']", NS)
    assert [(i.get("TransactionType"), i.get("Value")) for i in sbp] == [
        ("Insert", "120"), ("Update", "128")]
    audit = sbp[1].find("o:AuditRecord", NS)
    assert audit.find("o:UserRef", NS).get("UserOID") == "USR.inv"
    assert audit.find("o:LocationRef", NS).get("LocationOID") == "LOC.S01"
    assert audit.find("o:ReasonForChange", NS).text == "转录错误 / Transcription error"
    cleared = doc.find(".//o:ItemData[@ItemOID='I.vital_signs.symptoms_other'][@IsNull='Yes']",
                       NS)
    assert cleared is not None  # value → empty travels as a null with its reason
    assert b"patient_name\" Value" not in data
    subset = odm_export.export_clinical_odm(session, ledger, actor=SETUP, study_code=STUDY,
                                            subjects=["S01-ENT02"])
    sub = etree.fromstring(subset)
    schema.assertValid(sub)
    assert [s.get("SubjectKey") for s in sub.findall(".//o:SubjectData", NS)] == ["S01-ENT02"]
    exports = session.execute(select(LedgerEntry).where(LedgerEntry.action == "entry.export")
                              ).scalars().all()
    assert len(exports) == 2 and "sha256" in (exports[0].changes or "")


def test_csv_per_form_has_codes_and_labels_and_is_for_authorised_roles(
        session: Session, ledger: Ledger, entered: Actor) -> None:
    text = odm_export.export_form_csv(session, ledger, actor=SETUP, study_code=STUDY,
                                      form_name="vital_signs")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["subject"], r["sbp"], r["record_version"]) for r in rows] == [
        ("S01-ENT01", "128", "2"), ("S01-ENT02", "120", "1")]
    assert rows[0]["symptoms"] == "1" and rows[0]["symptoms_label"] == "发热 / Fever"
    demo = odm_export.export_form_csv(session, ledger, actor=SETUP, study_code=STUDY,
                                      form_name="demographics")
    assert "patient_name" not in demo.splitlines()[0].split(",")
    with pytest.raises(PermissionDenied):
        odm_export.export_form_csv(session, ledger, actor=entered, study_code=STUDY,
                                   form_name="vital_signs")
    assert json.loads("[]") == []
