"""Studies, protocol versions, ethics committees, approvals and consent waivers
(§11.3.2 e, §11.3.4.1, §11.3.4.2)."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import SETUP, approve, make_committee, make_study, make_user, statements_run
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies import guards
from studies.accounts import service as accounts
from studies.ethics import service as ethics
from studies.ethics.schemas import ApprovalIn, WaiverDecisionIn, WaiverIn
from studies.kernel.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from studies.kernel.roles import Role
from studies.registry import service as registry
from studies.registry.schemas import ProtocolIn, StudyIn


def actions(session: Session) -> list[str]:
    return list(session.execute(select(LedgerEntry.action).order_by(LedgerEntry.seq)).scalars())


def test_registering_a_study_records_protocol_sites_and_audit(session: Session,
                                                              ledger: Ledger) -> None:
    study = make_study(session, ledger, sites=("S01", "S02"))
    assert study.status == "draft"
    [pv] = registry.protocol_versions(session, study.id)
    assert (pv.number, pv.label, pv.planned_subjects) == (1, "1.0", 120)
    assert [s.code for s in registry.sites_of(session, study.id)] == ["S01", "S02"]
    assert actions(session)[-4:] == ["study.create", "protocol.create", "site.create",
                                     "site.create"]


def test_duplicate_protocol_number_is_refused(session: Session, ledger: Ledger) -> None:
    make_study(session, ledger)
    with pytest.raises(Conflict) as e:
        make_study(session, ledger)
    assert e.value.field == "code"


def test_bad_site_code_is_refused_naming_the_field(session: Session, ledger: Ledger) -> None:
    with pytest.raises(InvalidInput) as e:
        make_study(session, ledger, sites=("Ward 3",))
    assert e.value.field == "sites.code"


def test_registering_needs_the_study_manage_permission(session: Session, ledger: Ledger) -> None:
    user = make_user(session, ledger, "mon", Role.MONITOR)
    actor = accounts.actor_for(session, user, client=None)
    data = StudyIn(code="X-1", title_zh="x", title_en="x", sponsor="s",
                            protocol=ProtocolIn(
                                label="1", version_date=dt.date(2026, 1, 1), purpose="p",
                                legal_basis="l", research_content="r", data_types="d",
                                planned_subjects=1, planned_records=1, expected_results="e",
                                data_sharing_plan="d"))
    with pytest.raises(PermissionDenied):
        registry.register_study(session, ledger, actor=actor, data=data)


@pytest.mark.parametrize("members,genders,external,problem", [
    (6, ("female", "male"), True, "at least 7"),
    (7, ("female",), True, "one gender"),
    (7, ("female", "male"), False, "outside the institution"),
])
def test_approval_from_a_committee_not_meeting_11_3_2_e_is_refused(
        session: Session, ledger: Ledger, members: int, genders: tuple[str, ...],
        external: bool, problem: str) -> None:
    study = make_study(session, ledger)
    committee = make_committee(session, ledger, members=members, genders=genders,
                               external=external)
    before = len(actions(session))
    with pytest.raises(RuleViolation) as e:
        approve(session, ledger, study, committee)
    assert e.value.clause == "§11.3.2 e"
    assert problem in e.value.message
    assert len(actions(session)) == before  # nothing recorded
    assert ethics.approvals_of(session, study.id) == []


def test_removing_a_member_can_break_the_committee(session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger)
    committee = make_committee(session, ledger)
    ethics.remove_member(session, ledger, actor=SETUP,
                         member_id=ethics.members_of(session, committee.id)[3].id)
    with pytest.raises(RuleViolation, match="6 members"):
        approve(session, ledger, study, committee)


def test_approval_of_the_current_protocol_opens_enrolment_and_activates_the_study(
        session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger)
    with pytest.raises(RuleViolation) as e:
        guards.assert_enrolment_allowed(session, study_id=study.id, at=dt.datetime.now(dt.UTC))
    assert e.value.clause == "§11.3.4.2" and "no ethics approval" in e.value.message
    approve(session, ledger, study, make_committee(session, ledger))
    guards.assert_enrolment_allowed(session, study_id=study.id,
                                     at=dt.datetime.now(dt.UTC))
    assert study.status == "active"
    assert "ethics.approval" in actions(session) and "study.status" in actions(session)


def test_the_approval_gate_reads_the_protocol_and_its_decisions_in_one_statement(
        session: Session, ledger: Ledger) -> None:
    """Every save passes the approval gate: the protocol version in force and the committee's
    decisions on it are read in one statement, and the gate still finds the approval."""
    study = make_study(session, ledger)
    approve(session, ledger, study, make_committee(session, ledger))
    with statements_run(session) as seen:
        approval, problem = guards.approval_status(session, study_id=study.id,
                                                   at=dt.datetime.now(dt.UTC))
    assert problem is None and approval.decision == "approved"
    assert len(seen) == 1, seen
    assert "protocol_version" in seen[0] and "ethics_approval" in seen[0]


def test_a_rejection_does_not_open_enrolment(session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger)
    approve(session, ledger, study, make_committee(session, ledger), decision="rejected")
    with pytest.raises(RuleViolation, match="rejected"):
        guards.assert_enrolment_allowed(session, study_id=study.id,
                                         at=dt.datetime.now(dt.UTC))


def test_approval_with_conditions_needs_the_conditions(session: Session,
                                                        ledger: Ledger) -> None:
    study = make_study(session, ledger)
    committee = make_committee(session, ledger)
    with pytest.raises(InvalidInput) as e:
        ethics.record_approval(session, ledger, actor=SETUP, study_code=study.code,
                               data=ApprovalIn(
                                   protocol_version=1, committee_id=committee.id,
                                   reference="EC-1", decision="approved_with_conditions",
                                   decided_on=dt.date(2026, 2, 1)))
    assert e.value.field == "conditions"
    a = approve(session, ledger, study, committee, decision="approved_with_conditions")
    assert a.conditions == "Report SAEs in 24 h"


def test_expired_approval_stops_enrolment_and_says_why(session: Session,
                                                       ledger: Ledger) -> None:
    study = make_study(session, ledger)
    expiry = dt.date.today() + dt.timedelta(days=30)
    approve(session, ledger, study, make_committee(session, ledger), expires_on=expiry)
    guards.assert_enrolment_allowed(session, study_id=study.id, at=dt.datetime.now(dt.UTC))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    with pytest.raises(RuleViolation, match=f"expired on {expiry.isoformat()}"):
        guards.assert_enrolment_allowed(session, study_id=study.id, at=later)


def test_an_amendment_stops_enrolment_until_it_is_approved(session: Session,
                                                           ledger: Ledger) -> None:
    study = make_study(session, ledger)
    committee = make_committee(session, ledger)
    approve(session, ledger, study, committee)
    pv = registry.amend_protocol(
        session, ledger, actor=SETUP, study_code=study.code, summary="Add a 12-month visit",
        protocol=_protocol("2.0"))
    assert pv.number == 2 and "protocol.amend" in actions(session)
    with pytest.raises(RuleViolation, match="amendment"):
        guards.assert_enrolment_allowed(session, study_id=study.id,
                                         at=dt.datetime.now(dt.UTC))
    approve(session, ledger, study, committee, protocol_version=2)
    guards.assert_enrolment_allowed(session, study_id=study.id, at=dt.datetime.now(dt.UTC))


def _protocol(label: str) -> ProtocolIn:
    return ProtocolIn(label=label, version_date=dt.date(2026, 1, 5), purpose="p",
                               legal_basis="l", research_content="r", data_types="d",
                               planned_subjects=150, planned_records=3000,
                               expected_results="e", data_sharing_plan="s")


def test_an_amendment_needs_a_summary(session: Session, ledger: Ledger) -> None:
    study = make_study(session, ledger)
    with pytest.raises(InvalidInput) as e:
        registry.amend_protocol(session, ledger, actor=SETUP, study_code=study.code,
                                summary="  ", protocol=_protocol("2.0"))
    assert e.value.field == "summary"


@pytest.mark.parametrize("ground,flags,clause", [
    ("post_market_deidentified", {}, "§11.3.4.2 a 1)"),
    ("public_interest_statistics", {}, "§11.3.4.2 a 2)"),
    ("retrospective_unreachable", {"design": "prospective"}, "§11.3.4.2 b 1)"),
    ("retrospective_prior_consent", {"design": "prospective"}, "§11.3.4.2 b 2)"),
])
def test_a_waiver_ground_that_does_not_fit_the_design_flags_is_refused(
        session: Session, ledger: Ledger, ground: str, flags: dict[str, str],
        clause: str) -> None:
    study = make_study(session, ledger, **flags)  # type: ignore[arg-type]
    with pytest.raises(RuleViolation) as e:
        ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                              data=WaiverIn(ground=ground, justification="why",
                                                   data_deidentified=True,
                                                   prior_consent_reference="ICF 2019 v3"))
    assert (e.value.clause, e.value.field) == (clause, "ground")


@pytest.mark.parametrize("ground,flags", [
    ("post_market_deidentified", {"post_market": True}),
    ("public_interest_statistics", {"public_interest": True}),
    ("retrospective_unreachable", {"design": "retrospective"}),
])
def test_a_waiver_ground_that_fits_is_recorded_and_needs_approval(
        session: Session, ledger: Ledger, ground: str, flags: dict[str, object]) -> None:
    study = make_study(session, ledger, **flags)  # type: ignore[arg-type]
    w = ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                              data=WaiverIn(ground=ground, justification="why",
                                                   data_deidentified=True))
    assert w.status == "requested"
    w = ethics.decide_waiver(session, ledger, actor=SETUP, study_code=study.code,
                             waiver_id=w.id, data=WaiverDecisionIn(
                                 committee_id=make_committee(session, ledger).id,
                                 decision="approved", reference="EC-W1",
                                 decided_on=dt.date(2026, 2, 1)))
    assert w.status == "approved"
    assert actions(session).count("consent_waiver.decide") == 1


def test_a_waiver_without_de_identification_is_refused(session: Session,
                                                       ledger: Ledger) -> None:
    study = make_study(session, ledger, design="retrospective")
    with pytest.raises(RuleViolation) as e:
        ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                              data=WaiverIn(ground="retrospective_unreachable",
                                                   justification="why",
                                                   data_deidentified=False))
    assert (e.value.field, e.value.clause) == ("data_deidentified", "§11.3.4.2 b 1)")


def test_prior_consent_ground_names_the_signed_consent(session: Session,
                                                       ledger: Ledger) -> None:
    study = make_study(session, ledger, design="retrospective")
    with pytest.raises(RuleViolation, match="signed consent"):
        ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                              data=WaiverIn(ground="retrospective_prior_consent",
                                                   justification="why",
                                                   data_deidentified=True))


def test_waiver_decision_by_a_non_compliant_committee_is_refused(session: Session,
                                                                 ledger: Ledger) -> None:
    study = make_study(session, ledger, design="retrospective")
    w = ethics.request_waiver(session, ledger, actor=SETUP, study_code=study.code,
                              data=WaiverIn(ground="retrospective_unreachable",
                                                   justification="why", data_deidentified=True))
    small = make_committee(session, ledger, members=5)
    with pytest.raises(RuleViolation) as e:
        ethics.decide_waiver(session, ledger, actor=SETUP, study_code=study.code,
                             waiver_id=w.id, data=WaiverDecisionIn(
                                 committee_id=small.id, decision="approved",
                                 reference="EC-W1", decided_on=dt.date(2026, 2, 1)))
    assert e.value.clause == "§11.3.2 e"
    assert w.status == "requested"
