"""Data entry (§11.3.4.7 a–b): versions, reasons per field, conflicts, edit checks, history."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from factories import DEMOGRAPHICS, SETUP, VITALS, make_entry_study, make_user
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.consent import service as consent
from studies.consent.schemas import WithdrawalIn
from studies.entry import reading as entry_reading
from studies.entry import service as entry
from studies.entry.errors import EntryInvalid, StaleVersion
from studies.entry.models import CurrentValue, FormRecord, ValueVersion
from studies.entry.schemas import SaveIn, SettingsIn
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput, NotFound, PermissionDenied, RuleViolation
from studies.kernel.roles import Role

S = "S01-ENT01"


def investigator(session: Session, ledger: Ledger, name: str = "inv",
                 study: str = "ENT-2026-01") -> Actor:
    u = make_user(session, ledger, name, Role.INVESTIGATOR, study=study)
    return accounts.actor_for(session, u, client="10.0.0.5")


def save(session: Session, ledger: Ledger, actor: Actor, form: str,
         values: dict[str, Any], base: int = 0, reasons: dict[str, str] | None = None,
         event: str = "baseline", subject: str = S, **kw: Any) -> entry.SaveResult:
    return entry.save_form(session, ledger, actor=actor, study_code="ENT-2026-01",
                           subject_code=subject, event_name=event, form_name=form,
                           data=SaveIn(base_version=base, values=values,
                                             reasons=reasons or {}, **kw))


def count(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def inv(session: Session, ledger: Ledger) -> Actor:
    make_entry_study(session, ledger)
    return investigator(session, ledger)


def test_every_save_is_a_new_version_and_nothing_is_overwritten(
        session: Session, ledger: Ledger, inv: Actor) -> None:
    r1 = save(session, ledger, inv, "vital_signs", VITALS)
    assert (r1.version, r1.status) == (1, "complete")
    r2 = save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "130"}, base=1,
              reasons={"sbp": "transcription_error"})
    assert r2.version == 2
    hist = entry_reading.field_history(session, actor=inv, study_code="ENT-2026-01", subject_code=S,
                               event_name="baseline", form_name="vital_signs", item="sbp")
    assert [(h["version"], h["before"], h["after"], h["reason"], h["by"]) for h in hist] == [
        (1, None, "120", None, "inv"),
        (2, "120", "130", "转录错误 / Transcription error", "inv")]
    assert entry.current_values(session, r1.record_id)["sbp"] == "130"
    assert entry.current_values(session, r1.record_id)["bmi"] == "22.9"  # computed
    # one ledger entry per save, version = record version, all changes and reasons in it
    e = session.execute(select(LedgerEntry).where(LedgerEntry.action == "entry.update")
                        ).scalar_one()
    assert (e.version, e.actor, e.subject, e.client) == (2, "inv", S, "10.0.0.5")
    assert json.loads(e.changes or "") == [{"field": "sbp", "before": "120", "after": "130"}]
    assert e.reason == "sbp: 转录错误 / Transcription error"
    assert entry_reading.verify_current(session, study_code="ENT-2026-01") == []


def test_value_versions_cannot_be_updated_or_deleted(session: Session, ledger: Ledger,
                                                     inv: Actor) -> None:
    save(session, ledger, inv, "vital_signs", VITALS)
    for sql in ("UPDATE item_value_version SET after = NULL",
                "DELETE FROM item_value_version"):
        with pytest.raises(Exception, match="append-only"), session.begin_nested():
            session.execute(text(sql))


@pytest.mark.parametrize("before,after", [("6.5", None), (None, "9")],
                         ids=["value-to-empty", "empty-to-value"])
def test_empty_to_value_and_value_to_empty_are_changes_with_reasons(
        session: Session, ledger: Ledger, inv: Actor, before: Any, after: Any) -> None:
    field = "hba1c"
    first = {"hba1c": before} if before else {}
    r = save(session, ledger, inv, "labs", first)
    second = {"hba1c": after} if after else {}
    with pytest.raises(InvalidInput) as e:
        save(session, ledger, inv, "labs", second, base=r.version)
    assert e.value.field == "reasons.hba1c"
    assert count(session, ValueVersion) == (1 if before else 0)
    r2 = save(session, ledger, inv, "labs", second, base=r.version,
              reasons={field: "new source document"})
    assert r2.changes == [{"field": field, "before": before, "after": after,
                           "reason": "new source document"}]
    entry_ = session.execute(select(LedgerEntry).where(LedgerEntry.action == "entry.update")
                             ).scalar_one()
    assert json.loads(entry_.changes or "") == [{"field": field, "before": before,
                                                 "after": after}]


def test_a_save_on_an_older_version_merges_when_no_one_changed_its_fields(
        session: Session, ledger: Ledger, inv: Actor) -> None:
    other = investigator(session, ledger, "inv2")
    save(session, ledger, inv, "vital_signs", VITALS)
    save(session, ledger, other, "vital_signs", {**VITALS, "sbp": "125"}, base=1,
         reasons={"sbp": "transcription_error"})
    # inv still has version 1 open and changes only the weight: merged onto version 2
    r = save(session, ledger, inv, "vital_signs", {**VITALS, "weight": "71"}, base=1,
             reasons={"weight": "transcription_error"})
    assert (r.version, r.merged_from) == (3, 1)
    assert r.changes == [{"field": "weight", "before": "70.0", "after": "71",
                          "reason": "转录错误 / Transcription error"},
                         {"field": "bmi", "before": "22.9", "after": "23.2",
                          "reason": entry.REASON_CALC}]
    now = entry.current_values(session, r.record_id)
    assert (now["sbp"], now["weight"]) == ("125", "71")  # nobody's update lost
    versions = session.execute(select(LedgerEntry.version, LedgerEntry.actor).where(
        LedgerEntry.entity_id == r.record_id).order_by(LedgerEntry.seq)).all()
    assert [tuple(v) for v in versions] == [(1, "inv"), (2, "inv2"), (3, "inv")]
    assert entry_reading.verify_current(session, study_code="ENT-2026-01") == []


def test_a_real_conflict_is_refused_with_both_values(session: Session, ledger: Ledger,
                                                     inv: Actor) -> None:
    other = investigator(session, ledger, "inv2")
    save(session, ledger, inv, "vital_signs", VITALS)
    save(session, ledger, other, "vital_signs", {**VITALS, "sbp": "125"}, base=1,
         reasons={"sbp": "transcription_error"})
    with pytest.raises(StaleVersion) as e:
        save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "118", "weight": "71"},
             base=1, reasons={"sbp": "transcription_error", "weight": "transcription_error"})
    assert e.value.current_version == 2
    assert [(c["field"], c["base"], c["theirs"], c["yours"], c["by"], c["version"])
            for c in e.value.conflicts] == [("sbp", "120", "125", "118", "inv2", 2)]
    assert [(c["field"], c["before"], c["after"], c["by"]) for c in e.value.changes] == [
        ("sbp", "120", "125", "inv2")]
    assert (e.value.kept["sbp"], e.value.kept["weight"]) == ("118", "71")  # typing kept
    assert count(session, ValueVersion) == len(VITALS) + 2  # v1 (+ bmi) and v2 only
    # the same value typed by both is no conflict (and no change)
    same = save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "125"}, base=1)
    assert (same.saved, same.version) == (False, 2)
    with pytest.raises(StaleVersion):  # a second "first" save with other values conflicts
        save(session, ledger, inv, "vital_signs", VITALS, base=0)


def test_edit_checks_give_field_errors_and_write_nothing(session: Session, ledger: Ledger,
                                                         inv: Actor) -> None:
    with pytest.raises(EntryInvalid) as e:
        save(session, ledger, inv, "vital_signs", {**VITALS, "weight": "900", "height": "abc",
                                                   "nonexistent": "1", "sbp": None})
    assert e.value.errors == {"weight": 'must be at most 300',
                              "height": 'must be a number',
                              "nonexistent": 'no such field on this form',
                              "sbp": 'required'}
    with pytest.raises(EntryInvalid) as e:
        save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "x" * 1_000_000})
    assert e.value.field == "sbp"
    with pytest.raises(EntryInvalid) as e:
        save(session, ledger, inv, "labs", {"lab_comment": "x" * 1_000_000})
    assert e.value.errors == {"lab_comment": 'longer than 10000 characters'}
    assert count(session, FormRecord) == 0 and count(session, ValueVersion) == 0


def test_direct_identifiers_are_never_entered_as_study_data(session: Session, ledger: Ledger,
                                                           inv: Actor) -> None:
    with pytest.raises(EntryInvalid) as e:
        save(session, ledger, inv, "demographics", {**DEMOGRAPHICS, "patient_name": "张三"})
    assert "code index" in e.value.errors["patient_name"]
    r = save(session, ledger, inv, "demographics", DEMOGRAPHICS)
    assert "patient_name" not in entry.current_values(session, r.record_id)


def test_cross_field_rule_and_hidden_fields(session: Session, ledger: Ledger,
                                            inv: Actor) -> None:
    r = save(session, ledger, inv, "vital_signs", {**VITALS, "smoker": "1", "cigs_per_day": "5"})
    assert entry.current_values(session, r.record_id)["cigs_per_day"] == "5"
    # not smoking any more: cigs_per_day is hidden, so it is cleared (a change, with a reason)
    r2 = save(session, ledger, inv, "vital_signs", {**VITALS, "cigs_per_day": "5"}, base=1,
              reasons={"smoker": "new_source_document"})
    assert {c["field"]: c["reason"] for c in r2.changes} == {
        "smoker": "新的原始资料 / New source document", "cigs_per_day": entry.REASON_HIDDEN}
    assert entry.current_values(session, r.record_id)["cigs_per_day"] is None


def test_incomplete_saves_only_when_the_study_allows(session: Session, ledger: Ledger,
                                                     inv: Actor) -> None:
    partial = {"visit_date": "2026-05-01"}
    with pytest.raises(InvalidInput) as e:
        save(session, ledger, inv, "vital_signs", partial, incomplete=True)
    assert e.value.field == "incomplete"
    entry.update_settings(session, ledger, actor=SETUP, study_code="ENT-2026-01",
                          data=SettingsIn(allow_incomplete=True))
    r = save(session, ledger, inv, "vital_signs", partial, incomplete=True)
    assert r.status == "incomplete" and r.missing == ["height", "sbp", "weight"]
    with pytest.raises(EntryInvalid):  # bad values are refused even then
        save(session, ledger, inv, "vital_signs", {"height": "abc"}, base=1, incomplete=True)
    r2 = save(session, ledger, inv, "vital_signs", VITALS, base=1,
              reasons={k: "late_information" for k in ("height", "weight", "sbp", "smoker")})
    assert r2.status == "complete"


def test_entry_is_refused_without_consent_or_after_withdrawal(session: Session, ledger: Ledger,
                                                              inv: Actor) -> None:
    subject = entry.subject_of(session, entry.study_named(session, "ENT-2026-01"), S)[0]
    records = consent.records_of(session, subject.id)
    consent.withdraw_consent(session, ledger, actor=SETUP, study_code="ENT-2026-01",
                             consent_id=records[0].id, data=WithdrawalIn(
                                 withdrawn_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
                                 reason="subject asked"))
    with pytest.raises(RuleViolation) as e:
        save(session, ledger, inv, "vital_signs", VITALS)
    assert e.value.field == "subject_id"
    assert count(session, FormRecord) == 0


def test_forms_of_another_study_and_other_sites_are_refused(session: Session, ledger: Ledger,
                                                            inv: Actor) -> None:
    make_entry_study(session, ledger, "OTHER-01", subjects=("S01-OTH01",))
    with pytest.raises(NotFound) as e:
        save(session, ledger, inv, "vital_signs", VITALS, subject="S01-OTH01")
    assert e.value.field == "subject"
    with pytest.raises(PermissionDenied):
        entry.save_form(session, ledger, actor=inv, study_code="OTHER-01",
                        subject_code="S01-OTH01", event_name="baseline",
                        form_name="vital_signs", data=SaveIn(base_version=0,
                                                                   values=VITALS))
    with pytest.raises(NotFound) as e:
        save(session, ledger, inv, "no_such_form", VITALS)
    assert e.value.field == "form"
    with pytest.raises(InvalidInput) as e:
        save(session, ledger, inv, "labs", {}, event="followup")
    assert e.value.field == "form"


def test_timeline_lists_every_save(session: Session, ledger: Ledger,
                                   inv: Actor) -> None:
    save(session, ledger, inv, "vital_signs", VITALS)
    save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "121"}, base=1,
         reasons={"sbp": "typo on entry"})
    tl = entry_reading.timeline(session, actor=inv, study_code="ENT-2026-01", subject_code=S,
                        event_name="baseline", form_name="vital_signs")
    saves = [e for e in tl if e["kind"] == "save"]
    assert [s["version"] for s in saves] == [2, 1]
    assert saves[0]["changes"] == [{"field": "sbp", "before": "120", "after": "121",
                                    "reason": "typo on entry"}]


def test_the_current_table_is_proved_against_versions_and_ledger(
        session: Session, ledger: Ledger, inv: Actor) -> None:
    r = save(session, ledger, inv, "vital_signs", VITALS)
    assert entry_reading.verify_current(session) == []
    session.execute(CurrentValue.__table__.update().where(  # type: ignore[attr-defined]
        CurrentValue.__table__.c.item_name == "sbp").values(value="999"))  # type: ignore
    problems = entry_reading.verify_current(session)
    assert any("item sbp" in p and r.record_id in p for p in problems)
