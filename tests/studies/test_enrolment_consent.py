"""Enrolment needs a current ethics approval and a valid consent or approved waiver, taken in
the same step (§11.3.4.2): a refusal at any point leaves no subject, no code-index entry, no
consent record and no ledger entry behind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import (
    SETUP,
    approve,
    consent_to,
    enrol_subject,
    make_active_study,
    make_committee,
    make_protocol,
    make_study,
    make_user,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.db import make_engine, session_factory
from edc.keyring import Keyring
from studies import guards
from studies.accounts.service import actor_for
from studies.consent import service as consent
from studies.consent.models import ConsentRecord
from studies.consent.schemas import ConsentFormIn, ConsentIn
from studies.ethics import service as ethics
from studies.ethics.schemas import WaiverDecisionIn, WaiverIn
from studies.kernel.actor import Actor
from studies.kernel.errors import DomainError, InvalidInput, NotFound, RuleViolation
from studies.kernel.roles import Role
from studies.registry import service as registry
from studies.registry.models import Study
from studies.subjects import service as svc
from studies.subjects.crypto import CodeIndexKeys
from studies.subjects.models import CodeIndexEntry, Subject

STUDY = "EN-2026-01"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def ck(keys: Keyring) -> CodeIndexKeys:
    return keys.code_index_keys()


def investigator(session: Session, ledger: Ledger, study: str = STUDY) -> Actor:
    return actor_for(session, make_user(session, ledger, f"inv.{study.lower()}",
                                        Role.INVESTIGATOR, study=study), client="test")


def written(session: Session) -> dict[str, int]:
    """What enrolment writes: subjects, code-index entries, consent records, ledger entries."""
    return {t.__name__: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Subject, CodeIndexEntry, ConsentRecord, LedgerEntry)}


def refused(session: Session, call: Any, error: type[DomainError]) -> DomainError:
    """Run an enrolment that must be refused with ``error``; assert it wrote nothing."""
    before = written(session)
    with pytest.raises(error) as e:
        call()
    assert written(session) == before
    return e.value


def waiver_study(session: Session, ledger: Ledger) -> tuple[Study, Any, Any]:
    """A retrospective study, approved, with a waiver requested (not yet decided)."""
    study = make_study(session, ledger, "EN-2026-09", design="retrospective")
    committee = make_committee(session, ledger, name="Ethics Committee of EN-2026-09")
    approve(session, ledger, study, committee)
    waiver = ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                                   data=WaiverIn(ground="retrospective_unreachable",
                                                        justification="records 2010-2015",
                                                        data_deidentified=True))
    return study, committee, waiver


def test_enrolment_is_refused_without_any_ethics_approval(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    study = make_study(session, ledger, STUDY)
    site = study_site(session, study)
    inv = investigator(session, ledger)
    err = refused(session, lambda: enrol_subject(
        session, ledger, ck, actor=inv, study=study, site=site,
        consent=ConsentIn(consent_type="informed", form_id="none", scopes=["study"],
                                  given_at=now())), RuleViolation)
    assert err.clause == "§11.3.4.2" and err.field == "study"
    assert "no ethics approval" in err.message


def test_enrolment_is_refused_once_the_approval_expired(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    study = make_study(session, ledger, STUDY)
    today = dt.date.today()
    approval = approve(session, ledger, study, make_committee(session, ledger),
                       decided_on=dt.date(2026, 1, 6),  # after protocol 1.0 (2026-01-05)
                       expires_on=today - dt.timedelta(days=1))
    consent.add_consent_form(session, ledger, actor=SETUP, study_code=study.code,
                             data=ConsentFormIn(version="1.0", consent_type="informed",
                                                        text_zh="同意", text_en="I agree",
                                                        approval_id=approval.id))
    inv = investigator(session, ledger)
    err = refused(session, lambda: enrol_subject(session, ledger, ck, actor=inv, study=study,
                                                 site=study_site(session, study)),
                  RuleViolation)
    assert err.clause == "§11.3.4.2" and "expired" in err.message


def test_enrolment_is_refused_after_an_amendment_until_it_is_approved(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    study, (site,) = make_active_study(session, STUDY, ledger=ledger)
    inv = investigator(session, ledger)
    enrol_subject(session, ledger, ck, actor=inv, study=study, site=site, n=1)
    registry.amend_protocol(session, ledger, actor=SETUP, study_code=STUDY, summary="new arm",
                            protocol=make_protocol("2.0"))
    err = refused(session, lambda: enrol_subject(session, ledger, ck, actor=inv, study=study,
                                                 site=site, n=2), RuleViolation)
    assert err.clause == "§11.3.4.2" and "not been approved" in err.message
    committee = session.execute(select(ethics.EthicsCommittee)).scalars().first()
    approve(session, ledger, study, committee, protocol_version=2)
    enrol_subject(session, ledger, ck, actor=inv, study=study, site=site, n=2)


def test_enrolment_is_refused_without_consent(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    make_active_study(session, STUDY, ledger=ledger)
    inv = investigator(session, ledger)
    err = refused(session, lambda: svc.enrol_new_subject(
        session, ledger, actor=inv, keys=ck, study_code=STUDY, site_code="S01",
        name="测试者", resident_id=synthetic_rid(), consent=None), InvalidInput)
    assert err.field == "consent" and err.clause == "§11.3.4.2"


def test_enrolment_is_refused_with_a_consent_form_of_another_study(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    study, (site,) = make_active_study(session, STUDY, ledger=ledger)
    other, _ = make_active_study(session, "EN-2026-02", ledger=ledger)
    inv = investigator(session, ledger)
    err = refused(session, lambda: enrol_subject(
        session, ledger, ck, actor=inv, study=study, site=site,
        consent=consent_to(session, other)), NotFound)
    assert err.field == "form_id"


@pytest.mark.parametrize(("change", "field"), [
    ({"scopes": ["contact"]}, "scopes"),  # the required scope "study" is missing
    ({"scopes": ["study", "everything"]}, "scopes"),
    ({"given_at": now() + dt.timedelta(days=1)}, "given_at"),  # consent in the future
    ({"consent_type": "broad"}, "form_id"),  # the form is an informed-consent form
    ({"consent_type": "verbal"}, "consent_type"),
    ({"form_id": None}, "form_id"),
])
def test_enrolment_is_refused_with_an_invalid_consent(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, change: dict[str, Any],
        field: str) -> None:
    study, (site,) = make_active_study(session, STUDY, ledger=ledger)
    inv = investigator(session, ledger)
    bad = consent_to(session, study).model_copy(update=change)
    err = refused(session, lambda: enrol_subject(session, ledger, ck, actor=inv, study=study,
                                                 site=site, consent=bad), InvalidInput)
    assert err.field == field


def test_enrolment_with_informed_consent_records_the_consent(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    study, (site,) = make_active_study(session, STUDY, ledger=ledger)
    inv = investigator(session, ledger)
    signed = consent_to(session, study, scopes=("study", "deidentified_future"),
                        given_at=now() - dt.timedelta(minutes=5))
    s = enrol_subject(session, ledger, ck, actor=inv, study=study, site=site, consent=signed)
    [rec] = consent.consent_history(session, actor=inv, study_code=STUDY, subject_id=s.id)
    assert (rec["consent_type"], rec["form_version"], rec["scopes"], rec["obtained_by"]) == \
        ("informed", "1.0", ["deidentified_future", "study"], inv.username)
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())
    actions = [e.action for e in session.execute(
        select(LedgerEntry).where(LedgerEntry.subject == s.code)
        .order_by(LedgerEntry.seq)).scalars()]
    assert actions == ["subject.enrol", "consent.record"]


def test_enrolment_under_a_waiver_needs_the_committees_approval(
        session: Session, ledger: Ledger, ck: CodeIndexKeys) -> None:
    study, committee, waiver = waiver_study(session, ledger)
    site = study_site(session, study)
    inv = investigator(session, ledger, study.code)
    waived = consent_to(session, study, consent_type="waiver", scopes=(), waiver_id=waiver.id)
    err = refused(session, lambda: enrol_subject(session, ledger, ck, actor=inv, study=study,
                                                 site=site, consent=waived), RuleViolation)
    assert (err.field, err.clause) == ("waiver_id", "§11.3.4.2 b 1)")
    ethics.decide_waiver(session, ledger, actor=SETUP, study_code=study.code,
                         waiver_id=waiver.id, data=WaiverDecisionIn(
                             committee_id=committee.id, decision="approved", reference="W-1",
                             decided_on=dt.date.today()))
    s = enrol_subject(session, ledger, ck, actor=inv, study=study, site=site, consent=waived)
    [rec] = consent.consent_history(session, actor=inv, study_code=study.code, subject_id=s.id)
    assert (rec["consent_type"], rec["waiver_id"], rec["scopes"]) == \
        ("waiver", waiver.id, ["study"])
    guards.assert_entry_allowed(session, subject_id=s.id, at=now())


def test_a_failure_after_the_writes_leaves_nothing_behind(
        session: Session, ledger: Ledger, ck: CodeIndexKeys,
        monkeypatch: pytest.MonkeyPatch) -> None:
    study, (site,) = make_active_study(session, STUDY, ledger=ledger)
    inv = investigator(session, ledger)

    def fail(*args: object, **kw: object) -> None:
        raise RuleViolation("refused late", clause="§11.3.4.2")

    monkeypatch.setattr(consent, "record_consent", fail)
    refused(session, lambda: enrol_subject(session, ledger, ck, actor=inv, study=study,
                                           site=site), RuleViolation)
    monkeypatch.undo()
    s = enrol_subject(session, ledger, ck, actor=inv, study=study, site=site)  # chain intact
    assert session.execute(select(func.count()).select_from(Subject)).scalar_one() == 1
    assert s.code


def test_a_refused_enrolment_commits_nothing(fresh_url: str, keys: Keyring,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """On the database itself (SQLite or PostgreSQL): the refusal is caught, the caller's
    transaction commits, and still no subject, index entry, consent or ledger entry exists."""
    ledger = Ledger(signer=keys.signer, checkpoint_every=1000)
    engine = make_engine(fresh_url)
    sessions = session_factory(engine)
    try:
        with sessions() as s, s.begin():
            study, (site,) = make_active_study(s, STUDY, ledger=ledger)
            inv = investigator(s, ledger)
        with sessions() as s, s.begin():
            before = written(s)
        monkeypatch.setattr(consent, "record_consent", lambda *a, **k: (_ for _ in ()).throw(
            RuleViolation("refused late", clause="§11.3.4.2")))
        with sessions() as s, s.begin():
            with pytest.raises(RuleViolation):
                enrol_subject(s, ledger, keys.code_index_keys(), actor=inv,
                              study=s.get(Study, study.id), site=site)
            with pytest.raises(NotFound):  # a form of no study
                enrol_subject(s, ledger, keys.code_index_keys(), actor=inv,
                              study=s.get(Study, study.id), site=site,
                              consent=ConsentIn(consent_type="informed",
                                                        form_id="no-such-form",
                                                        scopes=["study"], given_at=now()))
        with sessions() as s, s.begin():
            assert written(s) == before
    finally:
        engine.dispose()


def study_site(session: Session, study: Study) -> Any:
    from studies.registry.models import Site

    return session.execute(select(Site).where(Site.study_id == study.id)).scalars().first()


def synthetic_rid() -> str:
    from factories import synthetic_identity

    return synthetic_identity(1)["resident_id"]
