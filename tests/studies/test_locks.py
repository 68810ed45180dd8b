"""Database lock and unlock (§11.3.4.7 a): every write path refuses locked data (423, naming
the lock, audited); the pre-lock report and its override; checkpoint and snapshot; unlock only
after three distinct role signatures; listed changes only; re-lock; concurrency with a lock."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from typing import Any

import pyotp
import pytest
from factories import (
    DEMOGRAPHICS,
    PASSWORD,
    SETUP,
    VITALS,
    enrol_subject,
    enrol_totp,
    login_as,
    make_active_study,
    make_entry_study,
    make_lock_team,
    make_user,
    strict_auth,
)
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from audit_trail.models import LedgerCheckpoint, LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from studies.accounts import service as accounts
from studies.accounts import signatures
from studies.consent import service as consent
from studies.consent.schemas import ConsentIn
from studies.entry import bulk_import, monitoring
from studies.entry import service as entry
from studies.entry.models import FormRecord
from studies.entry.schemas import QueryAnswerIn, QueryNoteIn, QueryOpenIn, SaveIn, SdvIn
from studies.kernel.actor import Actor
from studies.kernel.errors import (
    Conflict,
    Locked,
    NotAuthenticated,
    PermissionDenied,
    RuleViolation,
)
from studies.kernel.roles import Role
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.locks import unlock as unlocks
from studies.locks.models import DataLock, UnlockRequest
from studies.signoff import service as sign_off
from studies.signoff.models import InboxMessage

STUDY = "ENT-2026-01"
S1, S2 = "S01-ENT01", "S02-ENT02"


def save(session: Session, ledger: Ledger, actor: Actor, form: str,
         values: dict[str, Any], base: int = 0, subject: str = S1,
         reasons: dict[str, str] | None = None, **kw: Any) -> entry.SaveResult:
    return entry.save_form(session, ledger, actor=actor, study_code=STUDY, subject_code=subject,
                           event_name="baseline", form_name=form,
                           data=SaveIn(base_version=base, values=values,
                                             reasons=reasons or {}, **kw))


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Actor]:
    make_entry_study(session, ledger, subjects=(S1, S2), sites=("S01", "S02"))
    t = make_lock_team(session, ledger, STUDY)
    save(session, ledger, t["inv"], "vital_signs", VITALS)
    save(session, ledger, t["inv"], "demographics", DEMOGRAPHICS)
    save(session, ledger, t["inv"], "vital_signs", VITALS, subject=S2)
    return t


def lock(session: Session, ledger: Ledger, dm: Actor, scope: str = "study",
         **kw: Any) -> list[DataLock]:
    kw.setdefault("override_reason", "SDV waived by the sponsor for this test")
    return locks.set_locks(session, ledger, actor=dm, study_code=STUDY,
                           data=lock_schemas.LockIn(scope=scope, **kw))  # type: ignore[arg-type]


def unlock_request(session: Session, ledger: Ledger, actor: Actor,
                   changes: list[dict[str, Any]], hours: int = 24) -> UnlockRequest:
    return unlocks.request_unlock(session, ledger, actor=actor, study_code=STUDY,
                                data=lock_schemas.UnlockIn(
                                    changes=[lock_schemas.ChangeIn(**c) for c in changes],
                                    reason="late lab result for SBP", planned_date=dt.date.today(),
                                    period_hours=hours))


def sign(session: Session, ledger: Ledger, actor: Actor, req: UnlockRequest,
         role: Role, password: str = PASSWORD, **kw: Any) -> UnlockRequest:
    return unlocks.sign_unlock(session, ledger, actor=actor, study_code=STUDY, request_id=req.id,
                             role=role, username=actor.username, password=password,
                             config=strict_auth(second_factor_enforced=False), **kw)


def sign_all(session: Session, ledger: Ledger, t: dict[str, Actor],
             req: UnlockRequest) -> None:
    sign(session, ledger, t["pi"], req, Role.PRINCIPAL_INVESTIGATOR)
    sign(session, ledger, t["dm"], req, Role.DATA_MANAGER)
    sign(session, ledger, t["stat"], req, Role.STATISTICIAN)


# ---- lock ---------------------------------------------------------------------------------------

def test_locked_study_refuses_a_save_with_423_naming_the_lock_who_and_when_audited(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    (lk,) = lock(session, ledger, team["dm"])
    with pytest.raises(Locked) as e:
        save(session, ledger, team["inv"], "vital_signs", {**VITALS, "sbp": "130"}, base=1,
             reasons={"sbp": "transcription_error"})
    assert "study ENT-2026-01" in e.value.message and "by dm" in e.value.message
    assert lk.set_at.strftime("%Y-%m-%d %H:%M") in e.value.message
    assert e.value.audit is not None
    assert (e.value.audit["action"], e.value.audit["entity_id"], e.value.audit["outcome"],
            e.value.audit["actor"]) == ("lock.refused", lk.id, "denied", "inv")
    with pytest.raises(Locked):  # a first save of a new form too
        save(session, ledger, team["inv"], "labs", {"hba1c": "5.6"})


def test_locking_with_open_items_needs_an_override_reason_and_reports_them(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    monitoring.verify(session, ledger, actor=team["mon"], study_code=STUDY,
                      data=SdvIn(subject=S1, event="baseline", form="vital_signs"))
    save(session, ledger, team["inv"], "vital_signs", {**VITALS, "sbp": "131"}, base=1,
         reasons={"sbp": "transcription_error"})
    monitoring.open_query(session, ledger, actor=team["mon"], study_code=STUDY,
                          data=QueryOpenIn(subject=S1, event="baseline",
                                                      form="demographics", item="sex",
                                                      text="Please check sex"))
    data = lock_schemas.LockIn(scope="study")
    (rep,) = locks.prelock_report(session, actor=team["dm"], study_code=STUDY, data=data)
    assert rep["counts"]["open_queries"] == 1
    assert rep["counts"]["changed_after_verification"] == 1
    assert {r["form"] for r in rep["unverified_forms"]} >= {"demographics"}
    assert rep["changed_after_verification"][0]["fields"] == ["sbp"]
    with pytest.raises(RuleViolation) as e:
        locks.set_locks(session, ledger, actor=team["dm"], study_code=STUDY, data=data)
    assert e.value.field == "override_reason"
    assert session.execute(select(DataLock)).first() is None
    (lk,) = lock(session, ledger, team["dm"], override_reason="Sponsor accepts open query")
    assert lk.override_reason == "Sponsor accepts open query"
    assert lk.report["counts"]["open_queries"] == 1


def test_incomplete_forms_are_in_the_prelock_report(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger, allow_incomplete=True)
    t = make_lock_team(session, ledger, STUDY)
    save(session, ledger, t["inv"], "vital_signs", {"visit_date": "2026-05-01"},
         incomplete=True)
    (rep,) = locks.prelock_report(session, actor=t["dm"], study_code=STUDY,
                                  data=lock_schemas.LockIn(scope="study"))
    assert [r["form"] for r in rep["incomplete_forms"]] == ["vital_signs"]


def test_lock_takes_a_signed_checkpoint_and_a_snapshot_hash_of_the_locked_values(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    (lk,) = lock(session, ledger, team["dm"])
    cp = session.get(LedgerCheckpoint, lk.checkpoint_size)
    assert cp is not None and cp.reason == "lock" and bytes(cp.root_hash).hex() == \
        lk.checkpoint_root
    e = session.execute(select(LedgerEntry).where(LedgerEntry.action == "lock.set")).scalar_one()
    assert e.seq == lk.ledger_seq <= lk.checkpoint_size and lk.snapshot_hash in (e.changes or "")
    assert len(lk.snapshot_hash) == 64 and lk.snapshot_values > 10
    assert locks.verify_snapshot(session, lk)
    # the hash is over the values: another value gives another hash
    (site_lock,) = lock(session, ledger, team["dm"], "site", sites=["S02"])
    assert site_lock.snapshot_hash != lk.snapshot_hash


def test_scopes_site_form_and_subject_list_lock_only_their_data(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    inv = team["inv"]
    lock(session, ledger, team["dm"], "site", sites=["S02"])
    with pytest.raises(Locked):
        save(session, ledger, inv, "demographics", DEMOGRAPHICS, subject=S2)
    save(session, ledger, inv, "labs", {"hba1c": "5.6"}, subject=S1)  # site S01
    made = lock(session, ledger, team["dm"], "form", forms=["labs", "demographics"])  # bulk
    assert [m.scope for m in made] == ["form", "form"]
    with pytest.raises(Locked):
        save(session, ledger, inv, "labs", {"hba1c": "5.7"}, base=1,
             reasons={"hba1c": "transcription_error"})
    save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "125"}, base=1,
         reasons={"sbp": "transcription_error"})
    lock(session, ledger, team["dm"], "subjects", subjects=[S1])
    with pytest.raises(Locked):
        save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "126"}, base=2,
             reasons={"sbp": "transcription_error"})
    with pytest.raises(Conflict):
        lock(session, ledger, team["dm"], "site", sites=["S02"])


def test_a_bulk_import_touching_locked_data_is_refused_whole(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    (lk,) = lock(session, ledger, team["dm"], "subjects", subjects=[S2])
    csv = ("record_id,redcap_event_name,redcap_repeat_instance,visit_date,height,weight,sbp,"
           "smoker\n"
           f"{S1},followup_arm_1,1,2026-06-01,175,71.0,121,0\n"
           f"{S2},followup_arm_1,1,2026-06-01,160,55.0,118,0\n")
    records = select(func.count()).select_from(FormRecord)
    before = session.execute(records).scalar()
    with pytest.raises(Locked) as e, session.begin_nested():
        bulk_import.import_redcap_csv(session, ledger, actor=SETUP, study_code=STUDY,
                                      lines=io.StringIO(csv))
    assert lk.id in e.value.message and "by dm" in e.value.message
    assert e.value.audit is not None and e.value.audit["action"] == "lock.refused"
    assert session.execute(records).scalar() == before  # not even the unlocked S1 row
    with session.begin_nested():  # without the locked subject's row it goes through
        out = bulk_import.import_redcap_csv(session, ledger, actor=SETUP, study_code=STUDY,
                                            lines=io.StringIO(csv.rsplit(S2, 1)[0]))
    assert out["records"] == 1
    assert session.execute(records).scalar() == before + 1


def test_sdv_queries_and_consent_are_refused_while_locked_unless_settings_allow_answers(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    q = monitoring.open_query(session, ledger, actor=team["mon"], study_code=STUDY,
                              data=QueryOpenIn(subject=S1, event="baseline",
                                                          form="vital_signs", item="sbp",
                                                          text="Check SBP"))
    lock(session, ledger, team["dm"])
    with pytest.raises(Locked):
        monitoring.verify(session, ledger, actor=team["mon"], study_code=STUDY,
                          data=SdvIn(subject=S1, event="baseline"))
    with pytest.raises(Locked):
        monitoring.close_query(session, ledger, actor=team["mon"], study_code=STUDY,
                               query_id=q.id, data=QueryNoteIn(text="resolved"))
    answer = QueryAnswerIn(text="confirmed from source")
    with pytest.raises(Locked) as e:
        monitoring.answer_query(session, ledger, actor=team["inv"], study_code=STUDY,
                                query_id=q.id, data=answer)
    assert "query refused" in e.value.audit["reason"]
    with pytest.raises(Locked):
        monitoring.open_query(session, ledger, actor=team["mon"], study_code=STUDY,
                              data=QueryOpenIn(subject=S1, event="baseline",
                                                          form="vital_signs", item="weight",
                                                          text="Check"))
    locks.update_settings(session, ledger, actor=team["dm"], study_code=STUDY,
                          allow_query_answers=True)
    assert monitoring.answer_query(session, ledger, actor=team["inv"], study_code=STUDY,
                                   query_id=q.id, data=answer)["status"] == "answered"
    with pytest.raises(Locked):  # answering with a new value is still a change of data
        monitoring.answer_query(session, ledger, actor=team["inv"], study_code=STUDY,
                                query_id=q.id, data=QueryAnswerIn(
                                    text="corrected", change_value=True, value="99"))
    subj = entry.subject_of(session, entry.study_named(session, STUDY), S1)[0]
    with pytest.raises(Locked):
        consent.record_consent(session, ledger, actor=SETUP, study_code=STUDY,
                               subject_id=subj.id, data=ConsentIn(
                                   consent_type="informed", scopes=["study"],
                                   given_at=dt.datetime.now(dt.UTC)))


def test_only_the_data_manager_sets_locks(session: Session, ledger: Ledger,
                                          team: dict[str, Actor]) -> None:
    for who in ("pi", "inv", "stat", "mon"):
        with pytest.raises(PermissionDenied):
            lock(session, ledger, team[who])


# ---- unlock -------------------------------------------------------------------------------------

def test_unlock_request_tells_the_signers_and_is_not_effective_before_three_signatures(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    lock(session, ledger, team["dm"])
    sponsor = login_as(session, ledger, "sponsor1", Role.SPONSOR, study=STUDY)
    assert [m.kind for m in sign_off.inbox_for(session, actor=team["inv"])] == ["lock.set"]
    assert sign_off.inbox_for(session, actor=sponsor) == []  # a lock is not the sponsor's
    req = unlock_request(session, ledger, team["dm"],
                         [{"subject": S1, "form": "vital_signs", "fields": ["sbp"]}])
    assert req.status == "pending"
    for signer in ("pi", "dm", "stat"):  # each signer is told the request waits for them
        msgs = sign_off.inbox_for(session, actor=team[signer])
        assert msgs[0].kind == "unlock.request" and "late lab result" in msgs[0].text
        assert msgs[0].text.startswith("an unlock request waits for your signature")
    assert [m.kind for m in sign_off.inbox_for(session, actor=team["inv"])] == ["lock.set"]
    outsider = login_as(session, ledger, "other", Role.INVESTIGATOR, study="OTHER-1")
    assert sign_off.inbox_for(session, actor=outsider) == []
    sign(session, ledger, team["pi"], req, Role.PRINCIPAL_INVESTIGATOR)
    sign(session, ledger, team["dm"], req, Role.DATA_MANAGER)
    assert req.status == "pending"
    with pytest.raises(Locked):
        save(session, ledger, team["inv"], "vital_signs", {**VITALS, "sbp": "130"}, base=1,
             reasons={"sbp": "late_information"})
    sign(session, ledger, team["stat"], req, Role.STATISTICIAN)
    assert req.status == "active" and req.ends_at is not None
    view = unlocks.request_view(session, ledger, actor=team["pi"], study_code=STUDY,
                              request_id=req.id)
    assert view["content_ok"] and "fields: sbp" in view["content"]
    assert [s.role for s in view["signoffs"]] == [
        "principal_investigator", "data_manager", "statistician"]
    sigs = signatures.signatures_for(session, entity_type="unlock_request", entity_id=req.id)
    assert {s.content_hash for s in sigs} == {req.content_hash}


def test_signature_refusals_wrong_role_repeated_signer_role_twice_wrong_password_are_audited(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    lock(session, ledger, team["dm"])
    req = unlock_request(session, ledger, team["dm"], [{"subject": S1}])
    with pytest.raises(PermissionDenied) as e:  # holds DM, signs as PI
        sign(session, ledger, team["dm"], req, Role.PRINCIPAL_INVESTIGATOR)
    assert e.value.audit["action"] == "unlock_request.sign"
    assert "does not hold the role" in e.value.audit["reason"]
    with pytest.raises(PermissionDenied) as e:  # a role not among the signers
        sign(session, ledger, team["dm"], req, Role.MONITOR)
    assert e.value.audit["outcome"] == "denied"
    with pytest.raises(PermissionDenied):  # a monitor may not sign at all
        sign(session, ledger, team["mon"], req, Role.STATISTICIAN)
    with pytest.raises(NotAuthenticated) as na:
        sign(session, ledger, team["pi"], req, Role.PRINCIPAL_INVESTIGATOR, password="wrong")
    assert na.value.audit["action"] == "signature.sign" and na.value.field == "password"
    both = login_as(session, ledger, "both", Role.DATA_MANAGER, Role.STATISTICIAN, study=STUDY)
    sign(session, ledger, both, req, Role.DATA_MANAGER)
    with pytest.raises(PermissionDenied) as e:  # the same person in a second role
        sign(session, ledger, both, req, Role.STATISTICIAN)
    assert "repeated signer" in e.value.audit["reason"]
    with pytest.raises(Conflict) as c:  # the role has signed already
        sign(session, ledger, team["dm"], req, Role.DATA_MANAGER)
    assert "already signed" in c.value.audit["reason"]
    assert req.status == "pending"


def test_a_wrong_second_factor_is_refused_and_audited(session: Session, ledger: Ledger,
                                                     team: dict[str, Actor]) -> None:
    cfg = strict_auth()
    lock(session, ledger, team["dm"])
    req = unlock_request(session, ledger, team["dm"], [{"subject": S1}])
    user = make_user(session, ledger, "pi2", Role.PRINCIPAL_INVESTIGATOR, study=STUDY)
    secret = enrol_totp(session, user, cfg)
    _, pi2 = accounts.login(session, ledger, username="pi2", password=PASSWORD,
                            client="10.0.0.8", totp=pyotp.TOTP(secret).now(), config=cfg)
    with pytest.raises(NotAuthenticated) as e:
        unlocks.sign_unlock(session, ledger, actor=pi2, study_code=STUDY, request_id=req.id,
                          role=Role.PRINCIPAL_INVESTIGATOR, username="pi2", password=PASSWORD,
                          totp="000000", config=cfg)
    assert e.value.field == "totp" and e.value.audit["outcome"] == "failure"


def test_while_unlocked_only_listed_fields_change_and_each_change_names_the_unlock(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    inv = team["inv"]
    lock(session, ledger, team["dm"])
    rec = entry.find_record(session, entry.resolve(
        session, actor=inv, perm=entry.Perm.ENTRY_READ, study_code=STUDY, subject_code=S1,
        event_name="baseline", form_name="vital_signs"))
    assert rec is not None
    old = signatures.sign(session, ledger, actor=team["pi"], username="pi", password=PASSWORD,
                          meaning="casebook sign-off", content_hash="a" * 64,
                          entity_type="form_record", entity_id=rec.id, study=STUDY,
                          config=strict_auth(second_factor_enforced=False))
    req = unlock_request(session, ledger, team["pi"],
                         [{"subject": S1, "form": "vital_signs", "fields": ["sbp"]}])
    sign_all(session, ledger, team, req)
    view = unlocks.request_view(session, ledger, actor=team["dm"], study_code=STUDY,
                              request_id=req.id)
    assert view["invalidated"] == [old.line() + " — invalidated"]
    assert unlocks.invalidated(session, [old.id]) == {old.id}
    r = save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "130"}, base=1,
             reasons={"sbp": "late_information"})
    assert r.saved
    link = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "unlock.change")).scalar_one()
    assert link.entity_id == req.id and rec.id in (link.changes or "")
    with pytest.raises(Locked):  # a field not listed
        save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "130", "weight": "71.0"},
             base=2, reasons={"weight": "late_information"})
    with pytest.raises(Locked):  # a form not listed
        save(session, ledger, inv, "labs", {"hba1c": "5.6"})
    with pytest.raises(Locked):  # a subject not listed
        save(session, ledger, inv, "vital_signs", {**VITALS, "sbp": "140"}, base=1,
             subject=S2, reasons={"sbp": "late_information"})


def test_the_unlock_ends_when_its_period_is_over_and_when_the_data_manager_relocks(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    lock(session, ledger, team["dm"])
    req = unlock_request(session, ledger, team["pi"], [{"subject": S1}], hours=1)
    sign_all(session, ledger, team, req)
    assert req.ends_at is not None
    later = req.ends_at + dt.timedelta(seconds=1)
    with pytest.raises(Locked):  # refused at once after the period, even before re-lock
        entry.save_form(session, ledger, actor=team["inv"], study_code=STUDY, subject_code=S1,
                        event_name="baseline", form_name="labs",
                        data=SaveIn(base_version=0, values={"hba1c": "5.6"}),
                        now=later)
    assert unlocks.relock_expired(session, ledger, now=later) == [req.id]
    assert unlocks.relock_expired(session, ledger, now=later) == []  # idempotent
    assert req.status == "relocked" and req.closed_by == "system"
    assert req.relock_snapshot_hash and len(req.relock_snapshot_hash) == 64
    req2 = unlock_request(session, ledger, team["pi"], [{"subject": S1}])
    sign_all(session, ledger, team, req2)
    with pytest.raises(PermissionDenied):
        unlocks.relock(session, ledger, actor=team["pi"], study_code=STUDY, request_id=req2.id)
    unlocks.relock(session, ledger, actor=team["dm"], study_code=STUDY, request_id=req2.id)
    assert req2.status == "relocked"
    with pytest.raises(Locked):
        save(session, ledger, team["inv"], "labs", {"hba1c": "5.6"})
    with pytest.raises(Conflict):
        unlocks.relock(session, ledger, actor=team["dm"], study_code=STUDY, request_id=req2.id)


def test_requests_can_be_withdrawn_or_rejected_and_nothing_is_deleted(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    lock(session, ledger, team["dm"])
    a = unlock_request(session, ledger, team["pi"], [{"subject": S1}])
    b = unlock_request(session, ledger, team["pi"], [{"subject": S2}])
    with pytest.raises(PermissionDenied):  # not the requester, not the data manager
        unlocks.withdraw_unlock(session, ledger, actor=login_as(
            session, ledger, "pi9", Role.PRINCIPAL_INVESTIGATOR, study=STUDY),
            study_code=STUDY, request_id=a.id, reason="x")
    unlocks.withdraw_unlock(session, ledger, actor=team["pi"], study_code=STUDY, request_id=a.id,
                          reason="raised by mistake")
    unlocks.reject_unlock(session, ledger, actor=team["stat"], study_code=STUDY, request_id=b.id,
                        reason="the change is not justified")
    with pytest.raises(Conflict):
        sign(session, ledger, team["pi"], a, Role.PRINCIPAL_INVESTIGATOR)
    rows = {r.id: r.status for r in session.execute(select(UnlockRequest)).scalars()}
    assert rows == {a.id: "withdrawn", b.id: "rejected"}
    kinds = [m.kind for m in session.execute(select(InboxMessage)).scalars()]
    assert {"unlock.withdrawn", "unlock.rejected"} <= set(kinds)
    with pytest.raises(Conflict):
        unlocks.withdraw_unlock(session, ledger, actor=team["pi"], study_code=STUDY,
                              request_id=a.id, reason="again")


def test_an_unlock_request_must_name_locked_data(session: Session, ledger: Ledger,
                                                team: dict[str, Actor]) -> None:
    with pytest.raises(Conflict):  # nothing locked
        unlock_request(session, ledger, team["pi"], [{"subject": S1}])
    lock(session, ledger, team["dm"], "site", sites=["S02"])
    with pytest.raises(Exception) as e:
        unlock_request(session, ledger, team["pi"], [{"subject": S1}])
    assert getattr(e.value, "field", None) == "changes"


def test_enrolment_into_a_locked_site_is_refused_and_other_sites_stay_open(
        session: Session, ledger: Ledger, keys: keyring.Keyring) -> None:
    code = "LK-2026-01"
    study, (s1, s2) = make_active_study(session, code, sites=("S01", "S02"))
    dm = login_as(session, ledger, "dm", Role.DATA_MANAGER, study=code)
    inv = accounts.actor_for(session, make_user(session, ledger, "inv", Role.INVESTIGATOR,
                                                study=code), client="10.0.0.9")
    locks.set_locks(session, ledger, actor=dm, study_code=code,
                    data=lock_schemas.LockIn(scope="site", sites=["S01"]))
    ck = keys.code_index_keys()
    with pytest.raises(Locked) as e:
        enrol_subject(session, ledger, ck, actor=inv, study=study, site=s1)
    assert e.value.audit["action"] == "lock.refused" and "S01" in e.value.message
    assert enrol_subject(session, ledger, ck, actor=inv, study=study, site=s2, n=2).code


def test_a_signer_shown_another_text_than_the_request_is_refused(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    lock(session, ledger, team["dm"])
    req = unlock_request(session, ledger, team["dm"], [{"subject": S1}])
    with pytest.raises(Conflict) as e:
        sign(session, ledger, team["pi"], req, Role.PRINCIPAL_INVESTIGATOR,
             content_hash="0" * 64)
    assert e.value.field == "content_hash"
    assert sign_off.signoffs(session, "unlock_request", req.id) == []


# ---- concurrency --------------------------------------------------------------------------------

def _race(sessions: Any, ledger: Ledger, t: dict[str, Actor], edit_first: bool,
          code: str) -> str:
    """Run a lock and an edit in two threads (two connections); the first one holds its
    transaction open a moment after its write. Returns what happened to the edit."""
    held = threading.Event()
    errors: list[BaseException] = []
    outcome: list[str] = []

    def locker() -> None:
        try:
            if edit_first:
                held.wait(5)
            with sessions() as s, s.begin():
                locks.set_locks(s, ledger, actor=t["dm"], study_code=STUDY,
                                data=lock_schemas.LockIn(scope="subjects", subjects=[code],
                                                  override_reason="test"))
                if not edit_first:
                    held.set()
                    time.sleep(0.3)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def editor() -> None:
        try:
            if not edit_first:
                held.wait(5)
            with sessions() as s, s.begin():
                base = entry.find_record(s, entry.resolve(
                    s, actor=t["inv"], perm=entry.Perm.ENTRY_READ, study_code=STUDY,
                    subject_code=code, event_name="baseline", form_name="vital_signs"))
                assert base is not None
                save(s, ledger, t["inv"], "vital_signs", {**VITALS, "sbp": "101"}, subject=code,
                     base=base.version, reasons={"sbp": "transcription_error"})
                if edit_first:
                    held.set()
                    time.sleep(0.3)
            outcome.append("committed")
        except Locked:
            outcome.append("refused")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=locker), threading.Thread(target=editor)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    return outcome[0]


def test_an_edit_concurrent_with_setting_a_lock_commits_before_it_or_is_refused(
        fresh_url: str, keys: keyring.Keyring) -> None:
    """Threads with a connection each (SQLite and PostgreSQL); each round locks one subject
    while an edit of that subject runs, the lock first or the edit first."""
    engine = make_engine(fresh_url)
    sessions = session_factory(engine)
    ledger = Ledger(signer=keys.signer)
    codes = [f"S01-CC{n:03d}" for n in range(4)]
    with sessions() as s, s.begin():
        make_entry_study(s, ledger, subjects=tuple(codes))
        t = make_lock_team(s, ledger, STUDY)
        for code in codes:
            save(s, ledger, t["inv"], "vital_signs", VITALS, subject=code)
    outcomes: list[str] = []
    for code, edit_first in zip(codes, (True, False, True, False), strict=True):
        outcomes.append(_race(sessions, ledger, t, edit_first, code))
        with sessions() as s, s.begin():
            (lk,) = [lk for lk in s.execute(select(DataLock)).scalars()
                     if f"subjects {code}" in lk.label]
            # nothing was written after the lock: the data still hashes to its snapshot, and
            # every entry.update of the subject precedes lock.set in the ledger
            assert locks.verify_snapshot(s, lk)
            seqs = s.execute(select(LedgerEntry.seq).where(
                LedgerEntry.action == "entry.update", LedgerEntry.subject == code)
            ).scalars().all()
            assert all(q < lk.ledger_seq for q in seqs)
            assert len(seqs) == (1 if edit_first else 0)
    assert outcomes == ["committed", "refused", "committed", "refused"]
    engine.dispose()


def test_locks_and_requests_are_never_deleted(session: Session, ledger: Ledger,
                                              team: dict[str, Actor]) -> None:
    lock(session, ledger, team["dm"])
    unlock_request(session, ledger, team["dm"], [{"subject": S1}])
    for sql in ("DELETE FROM data_lock", "UPDATE data_lock SET set_by = 'x'",
                "DELETE FROM unlock_request", "DELETE FROM inbox_message"):
        with pytest.raises(Exception, match="append-only"), session.begin_nested():
            session.execute(text(sql))
