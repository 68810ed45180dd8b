"""Consent forms, consent records, re-consent and withdrawal; the checks other packages call
(§11.3.4.2, §7 a)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import (
    SETUP,
    approve,
    make_committee,
    make_protocol,
    make_study,
    make_subject,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies import guards
from studies.consent import service as consent
from studies.consent.schemas import ConsentFormIn, ConsentIn, WithdrawalIn
from studies.ethics import service as ethics
from studies.ethics.schemas import WaiverDecisionIn, WaiverIn
from studies.kernel.errors import Conflict, InvalidInput, RuleViolation
from studies.registry import service as registry
from studies.registry.models import Study


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ago(minutes: int) -> dt.datetime:
    return now() - dt.timedelta(minutes=minutes)


@pytest.fixture
def setup(session: Session, ledger: Ledger) -> dict[str, Any]:
    study = make_study(session, ledger)
    committee = make_committee(session, ledger)
    approval = approve(session, ledger, study, committee)
    form = consent.add_consent_form(session, ledger, actor=SETUP, study_code=study.code,
                                    data=ConsentFormIn(
                                        version="1.0", consent_type="informed",
                                        text_zh="知情同意书正文", text_en="Consent text",
                                        approval_id=approval.id))
    subject = make_subject(session, study)
    return {"study": study, "committee": committee, "approval": approval, "form": form,
            "subject": subject}


def give(session: Session, ledger: Ledger, study: Study, subject_id: str, form_id: str,
         scopes: list[str], at: dt.datetime, consent_type: str = "informed") -> Any:
    return consent.record_consent(session, ledger, actor=SETUP, study_code=study.code,
                                  subject_id=subject_id, data=ConsentIn(
                                      consent_type=consent_type, form_id=form_id, scopes=scopes,
                                      given_at=at))


def test_entry_is_refused_without_consent(session: Session, setup: dict[str, Any]) -> None:
    with pytest.raises(RuleViolation) as e:
        guards.assert_entry_allowed(session, subject_id=setup["subject"].id, at=now())
    assert e.value.clause == "§11.3.4.2"
    assert "no consent" in e.value.message


def test_consent_allows_entry_and_the_scopes_it_grants(session: Session, ledger: Ledger,
                                                       setup: dict[str, Any]) -> None:
    s = setup["subject"]
    rec = give(session, ledger, setup["study"], s.id, setup["form"].id,
               ["study", "deidentified_future"], ago(10))
    assert rec.obtained_by == "setup"
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    assert guards.may_use(session, subject_id=s.id, scope="deidentified_future", at=now())
    assert not guards.may_use(session, subject_id=s.id, scope="cross_border", at=now())
    assert not guards.may_use(session, subject_id=s.id, scope="study", at=ago(20))  # before
    entry = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "consent.record")).scalar_one()
    assert entry.subject == s.code and entry.study == setup["study"].code


def test_assert_may_use_says_why(session: Session, ledger: Ledger,
                                 setup: dict[str, Any]) -> None:
    s = setup["subject"]
    give(session, ledger, setup["study"], s.id, setup["form"].id, ["study"], ago(5))
    with pytest.raises(RuleViolation) as e:
        guards.assert_may_use(session, subject_id=s.id, scope="identifiable", at=now())
    assert "does not cover 'identifiable'" in e.value.message
    assert e.value.clause == "§11.3.4.2, §7 a"


def test_unknown_scope_is_invalid_input(session: Session, setup: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        guards.may_use(session, subject_id=setup["subject"].id, scope="everything", at=now())
    assert e.value.field == "scope"


def test_informed_consent_must_include_use_in_the_study(session: Session, ledger: Ledger,
                                                        setup: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        give(session, ledger, setup["study"], setup["subject"].id, setup["form"].id,
             ["contact"], ago(1))
    assert e.value.field == "scopes"


def test_consent_form_needs_an_approving_decision(session: Session, ledger: Ledger,
                                                  setup: dict[str, Any]) -> None:
    rejected = approve(session, ledger, setup["study"], setup["committee"],
                       decision="rejected")
    with pytest.raises(RuleViolation) as e:
        consent.add_consent_form(session, ledger, actor=SETUP, study_code=setup["study"].code,
                                 data=ConsentFormIn(
                                     version="2.0", consent_type="informed", text_zh="x",
                                     text_en="x", approval_id=rejected.id))
    assert e.value.clause == "§11.3.4.2"


def test_whole_withdrawal_stops_entry_but_keeps_history(session: Session, ledger: Ledger,
                                                        setup: dict[str, Any]) -> None:
    s, study = setup["subject"], setup["study"]
    rec = give(session, ledger, study, s.id, setup["form"].id, ["study", "contact"], ago(30))
    consent.withdraw_consent(session, ledger, actor=SETUP, study_code=study.code,
                             consent_id=rec.id, data=WithdrawalIn(
                                 withdrawn_at=ago(10), reason="moved away"))
    with pytest.raises(RuleViolation, match="withdrew consent"):
        guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    assert guards.may_use(session, subject_id=s.id, scope="study", at=ago(20))  # before it
    assert not guards.may_use(session, subject_id=s.id, scope="contact", at=now())
    [h] = consent.consent_history(session, actor=SETUP, study_code=study.code,
                                  subject_id=s.id)
    assert h["withdrawals"][0]["scope"] is None and h["withdrawals"][0]["reason"] == "moved away"
    e = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "consent.withdraw")).scalar_one()
    assert e.reason == "moved away"


def test_withdrawing_one_scope_keeps_the_others(session: Session, ledger: Ledger,
                                                setup: dict[str, Any]) -> None:
    s, study = setup["subject"], setup["study"]
    rec = give(session, ledger, study, s.id, setup["form"].id,
               ["study", "cross_border", "deidentified_future"], ago(30))
    consent.withdraw_consent(session, ledger, actor=SETUP, study_code=study.code,
                             consent_id=rec.id, data=WithdrawalIn(
                                 scopes=["cross_border"], withdrawn_at=ago(5)))
    assert not guards.may_use(session, subject_id=s.id, scope="cross_border", at=now())
    assert guards.may_use(session, subject_id=s.id, scope="deidentified_future", at=now())
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    with pytest.raises(Conflict):
        consent.withdraw_consent(session, ledger, actor=SETUP, study_code=study.code,
                                 consent_id=rec.id, data=WithdrawalIn(
                                     scopes=["cross_border"], withdrawn_at=ago(1)))
    with pytest.raises(InvalidInput):
        consent.withdraw_consent(session, ledger, actor=SETUP, study_code=study.code,
                                 consent_id=rec.id, data=WithdrawalIn(
                                     scopes=["contact"], withdrawn_at=ago(1)))


def test_withdrawal_before_the_consent_is_refused(session: Session, ledger: Ledger,
                                                  setup: dict[str, Any]) -> None:
    rec = give(session, ledger, setup["study"], setup["subject"].id, setup["form"].id,
               ["study"], ago(5))
    with pytest.raises(InvalidInput) as e:
        consent.withdraw_consent(session, ledger, actor=SETUP, study_code=setup["study"].code,
                                 consent_id=rec.id, data=WithdrawalIn(
                                     withdrawn_at=ago(50)))
    assert e.value.field == "withdrawn_at"


def test_new_form_requiring_reconsent_stops_entry_until_reconsent(
        session: Session, ledger: Ledger, setup: dict[str, Any]) -> None:
    s, study = setup["subject"], setup["study"]
    give(session, ledger, study, s.id, setup["form"].id, ["study"], ago(30))
    v2 = consent.add_consent_form(session, ledger, actor=SETUP, study_code=study.code,
                                  data=ConsentFormIn(
                                      version="2.0", consent_type="informed", text_zh="新版",
                                      text_en="New text", approval_id=setup["approval"].id,
                                      requires_reconsent=True))
    with pytest.raises(RuleViolation, match="re-consent to form version 2.0"):
        guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    rec2 = give(session, ledger, study, s.id, v2.id, ["study", "contact"], ago(1))
    assert rec2.replaces_id is not None
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    assert guards.may_use(session, subject_id=s.id, scope="contact", at=now())
    assert "consent.reconsent" in session.execute(select(LedgerEntry.action)).scalars().all()


def test_consenting_twice_to_the_same_version_is_a_conflict(
        session: Session, ledger: Ledger, setup: dict[str, Any]) -> None:
    give(session, ledger, setup["study"], setup["subject"].id, setup["form"].id, ["study"],
         ago(5))
    with pytest.raises(Conflict):
        give(session, ledger, setup["study"], setup["subject"].id, setup["form"].id,
             ["study"], ago(1))


def test_consent_in_the_future_is_refused(session: Session, ledger: Ledger,
                                          setup: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        give(session, ledger, setup["study"], setup["subject"].id, setup["form"].id,
             ["study"], now() + dt.timedelta(days=1))
    assert e.value.field == "given_at"


def test_entry_is_refused_once_the_approval_expires(session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger)
    approval = approve(session, ledger, study, make_committee(session, ledger),
                       expires_on=dt.date.today() + dt.timedelta(days=10))
    form = consent.add_consent_form(session, ledger, actor=SETUP, study_code=study.code,
                                    data=ConsentFormIn(
                                        version="1", consent_type="informed", text_zh="x",
                                        text_en="x", approval_id=approval.id))
    s = make_subject(session, study)
    give(session, ledger, study, s.id, form.id, ["study"], ago(1))
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    with pytest.raises(RuleViolation, match="expired"):
        guards.assert_entry_allowed(session, subject_id=s.id, at=now() + dt.timedelta(days=11))


def test_an_approved_waiver_covers_coded_use_only(session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger, design="retrospective")
    committee = make_committee(session, ledger)
    approve(session, ledger, study, committee)
    w = ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                              data=WaiverIn(ground="retrospective_unreachable",
                                                   justification="records 2010-2015",
                                                   data_deidentified=True))
    s = make_subject(session, study)
    waived = ConsentIn(consent_type="waiver", waiver_id=w.id, given_at=ago(1))
    with pytest.raises(RuleViolation) as e:  # not yet approved
        consent.record_consent(session, ledger, actor=SETUP, study_code=study.code,
                               subject_id=s.id, data=waived)
    assert e.value.clause == "§11.3.4.2 b 1)"
    ethics.decide_waiver(session, ledger, actor=SETUP, study_code=study.code, waiver_id=w.id,
                         data=WaiverDecisionIn(committee_id=committee.id,
                                                      decision="approved", reference="W-1",
                                                      decided_on=dt.date.today()))
    rec = consent.record_consent(session, ledger, actor=SETUP, study_code=study.code,
                                 subject_id=s.id, data=waived)
    assert rec.scopes == ["study"]
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    assert not guards.may_use(session, subject_id=s.id, scope="identifiable", at=now())


def test_broad_consent_allows_entry_for_de_identified_research(session: Session,
                                                               ledger: Ledger,
                                                               setup: dict[str, Any]) -> None:
    study = setup["study"]
    broad = consent.add_consent_form(session, ledger, actor=SETUP, study_code=study.code,
                                     data=ConsentFormIn(
                                         version="B1", consent_type="broad",
                                         text_zh="广泛知情同意", text_en="Broad consent",
                                         approval_id=setup["approval"].id))
    s = setup["subject"]
    give(session, ledger, study, s.id, broad.id, ["deidentified_future"], ago(2),
         consent_type="broad")
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    assert not guards.may_use(session, subject_id=s.id, scope="identifiable", at=now())


def test_consent_cannot_be_recorded_without_a_current_approval(session: Session,
                                                               ledger: Ledger,
                                                               setup: dict[str, Any]) -> None:
    registry.amend_protocol(session, ledger, actor=SETUP, study_code=setup["study"].code,
                            summary="new arm", protocol=make_protocol("2.0"))
    with pytest.raises(RuleViolation, match="not been approved"):
        give(session, ledger, setup["study"], setup["subject"].id, setup["form"].id,
             ["study"], ago(1))
