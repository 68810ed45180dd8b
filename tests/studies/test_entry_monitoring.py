"""SDV and queries (§11.3.2 f, §11.3.4.7 e): verification cleared by a later change, the
monitor's worklist, query threads with every state change in the ledger."""

from __future__ import annotations

from typing import Any

import pytest
from factories import SETUP, VITALS, make_entry_study, make_user, statements_run
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_entry import investigator, save

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.entry import monitoring
from studies.entry import reading as entry_reading
from studies.entry import service as entry
from studies.entry.schemas import QueryAnswerIn, QueryNoteIn, QueryOpenIn, SdvIn, SettingsIn
from studies.kernel.actor import Actor
from studies.kernel.errors import Conflict, InvalidInput, PermissionDenied
from studies.kernel.roles import Role

STUDY, S = "ENT-2026-01", "S01-ENT01"


@pytest.fixture
def people(session: Session, ledger: Ledger) -> dict[str, Actor]:
    make_entry_study(session, ledger)
    mon = make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)
    return {"inv": investigator(session, ledger),
            "mon": accounts.actor_for(session, mon, client="10.0.0.9")}


def verify(session: Session, ledger: Ledger, actor: Actor, **kw: Any) -> dict[str, Any]:
    return monitoring.verify(session, ledger, actor=actor, study_code=STUDY,
                             data=SdvIn(subject=S, event="baseline", **kw))


def test_a_form_view_reads_the_study_settings_once(session: Session, ledger: Ledger,
                                                   people: dict[str, Actor]) -> None:
    """The settings decide both the SDV set and who sees level-5 values (the treating roles):
    a form view reads them in one statement, not one for each."""
    save(session, ledger, people["inv"], "vital_signs", VITALS)
    with statements_run(session) as seen:
        view = entry_reading.form_view(session, actor=people["mon"], study_code=STUDY,
                                       subject_code=S, event_name="baseline",
                                       form_name="vital_signs")
    assert view["values"]["sbp"] == VITALS["sbp"] and view["settings"]["sdv_mode"]
    assert len([q for q in seen if "FROM entry_settings" in q]) == 1, seen


def test_a_change_after_sdv_clears_it_visibly_and_lands_in_the_worklist(
        session: Session, ledger: Ledger, people: dict[str, Actor]) -> None:
    inv, mon = people["inv"], people["mon"]
    save(session, ledger, inv, "vital_signs", VITALS)
    wl = monitoring.worklist(session, actor=mon, study_code=STUDY)
    assert [(w["form"], w["fields"]) for w in wl["unverified_forms"]] == [
        ("vital_signs", ["height", "sbp", "smoker", "visit_date", "weight"])]
    done = verify(session, ledger, mon, form="vital_signs")
    assert done["count"] == 5
    assert monitoring.worklist(session, actor=mon, study_code=STUDY)["unverified_forms"] == []
    r = save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "135"}, base=1,
             reasons={"sbp": "transcription_error"})
    assert r.sdv_cleared == ["sbp"]
    view = entry_reading.form_view(session, actor=mon, study_code=STUDY, subject_code=S,
                           event_name="baseline", form_name="vital_signs")
    assert view["sdv"]["sbp"]["state"] == "cleared" and view["sdv"]["height"]["state"] == \
        "verified"
    wl = monitoring.worklist(session, actor=mon, study_code=STUDY)
    assert [(c["item"], c["note"]) for c in wl["changed_after_sdv"]] == [
        ("sbp", 'requires verification: changed after SDV')]
    e = session.execute(select(LedgerEntry).where(LedgerEntry.action == "entry.update")
                        ).scalar_one()
    assert '"field":"sdv:sbp"' in (e.changes or "")
    verify(session, ledger, mon, form="vital_signs", items=["sbp"])
    wl = monitoring.worklist(session, actor=mon, study_code=STUDY)
    assert wl["changed_after_sdv"] == [] and wl["unverified_forms"] == []


def test_a_whole_visit_is_verified_in_one_action(session: Session, ledger: Ledger,
                                                 people: dict[str, Actor]) -> None:
    inv, mon = people["inv"], people["mon"]
    save(session, ledger, inv, "vital_signs", VITALS)
    save(session, ledger, inv, "labs", {"hba1c": "6.1"})
    done = verify(session, ledger, mon)
    assert done["verified"] == {"labs": ["hba1c"], "vital_signs": [
        "height", "sbp", "smoker", "visit_date", "weight"]}
    assert len(session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "sdv.verify")).all()) == 2
    with pytest.raises(PermissionDenied):
        verify(session, ledger, inv)
    with pytest.raises(InvalidInput):
        verify(session, ledger, mon, form="labs", items=["nope"])


def test_sdv_settings_key_items_and_none(session: Session, ledger: Ledger,
                                         people: dict[str, Actor]) -> None:
    inv, mon = people["inv"], people["mon"]
    entry.update_settings(session, ledger, actor=SETUP, study_code=STUDY,
                          data=SettingsIn(sdv_mode="key",
                                                sdv_key_items=["vital_signs.sbp"]))
    save(session, ledger, inv, "vital_signs", VITALS)
    wl = monitoring.worklist(session, actor=mon, study_code=STUDY)
    assert wl["unverified_forms"][0]["fields"] == ["sbp"]
    with pytest.raises(InvalidInput):
        entry.update_settings(session, ledger, actor=SETUP, study_code=STUDY,
                              data=SettingsIn(sdv_mode="most"))


def test_query_thread_open_answer_with_correction_close_reopen(
        session: Session, ledger: Ledger, people: dict[str, Actor]) -> None:
    inv, mon = people["inv"], people["mon"]
    save(session, ledger, inv, "vital_signs", VITALS)
    q = monitoring.open_query(session, ledger, actor=mon, study_code=STUDY,
                              data=QueryOpenIn(subject=S, event="baseline",
                                                          form="vital_signs", item="sbp",
                                                          text="Source says 128?"))
    with pytest.raises(PermissionDenied):  # investigators answer, they do not close
        monitoring.close_query(session, ledger, actor=inv, study_code=STUDY, query_id=q.id,
                               data=QueryNoteIn(text="done"))
    out = monitoring.answer_query(session, ledger, actor=inv, study_code=STUDY, query_id=q.id,
                                  data=QueryAnswerIn(
                                      text="Corrected from source", change_value=True,
                                      value="128"))
    assert out["save"]["changes"] == [{"field": "sbp", "before": "120", "after": "128",
                                       "reason": "回复质疑 / Query response"}]
    monitoring.close_query(session, ledger, actor=mon, study_code=STUDY, query_id=q.id,
                           data=QueryNoteIn(text="Thanks"))
    with pytest.raises(Conflict):
        monitoring.answer_query(session, ledger, actor=inv, study_code=STUDY, query_id=q.id,
                                data=QueryAnswerIn(text="more"))
    monitoring.close_query(session, ledger, actor=mon, study_code=STUDY, query_id=q.id,
                           data=QueryNoteIn(text="Unit is wrong"), reopen=True)
    view = monitoring.get_query(session, actor=mon, study_code=STUDY, query_id=q.id)
    assert view["status"] == "open"
    assert [(m["kind"], m["by"]) for m in view["thread"]] == [
        ("open", "mon"), ("answer", "inv"), ("close", "mon"), ("reopen", "mon")]
    actions = list(session.execute(select(LedgerEntry.action).where(
        LedgerEntry.entity_type == "data_query").order_by(LedgerEntry.seq)).scalars())
    assert actions == ["query.open", "query.answer", "query.close", "query.reopen"]
    wl = monitoring.worklist(session, actor=mon, study_code=STUDY)
    assert [w["id"] for w in wl["open_queries"]] == [q.id]
