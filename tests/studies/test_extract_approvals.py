"""The review and signing of extract requests (issue 14, items 5–6, 8–9): the data security
office's first review (§11.3.4.6), the committee's vote over the roll frozen when the request
opened (Appendix C), the data-use agreement (Appendix E.3) bound into every signature, and the
RIF's ethics approval of identifiable use of the current protocol version (§11.3.4.2)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from factories import (
    EXAMPLE_PHARMA,
    HOSPITAL_ORG,
    PASSWORD,
    SETUP,
    affiliate,
    approve,
    make_extract_study,
    make_protocol,
    person,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import admin
from studies.accounts import organisations as orgs
from studies.accounts.config import AuthConfig
from studies.accounts.models import Signature
from studies.ethics.models import EthicsCommittee
from studies.extracts import agreement
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.models import ExtractDecision, ExtractRequest
from studies.extracts.schemas import DecisionIn, RequestIn
from studies.kernel import i18n
from studies.kernel.actor import SYSTEM, Actor
from studies.kernel.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from studies.kernel.roles import Role
from studies.registry import service as registry
from studies.signoff import service as sign_off

CFG = AuthConfig(second_factor_enforced=False)
STUDY = "EXT-2026-01"
TODAY = dt.date.today()


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def world(session: Session, ledger: Ledger, tmp_path: Path) -> dict[str, Any]:
    made = make_extract_study(session, ledger, STUDY, n=3, identifiable=(0, 1, 2),
                              with_data=False)
    ident = tmp_path / "sponsor.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(line.split(": ", 1)[1] for line in ident.read_text().splitlines()
               if line.startswith("# public key:"))
    researcher = person(session, ledger, "researcher1", Role.STATISTICIAN)
    affiliate(session, ledger, "researcher1", HOSPITAL_ORG)  # a RIF stays in the hospital
    orgs.register_organisation(session, ledger, actor=SYSTEM, code="us-pharma",
                               name_zh="美国药企", name_en="US Pharma", kind=orgs.OrgKind.COMPANY,
                               country="US")
    return dict(made, pub=pub, researcher=researcher,
                sponsor=person(session, ledger, "sponsor1", Role.SPONSOR),
                officer=person(session, ledger, "dso", Role.SECURITY_OFFICER),
                ethics=person(session, ledger, "ecm", Role.ETHICS_MEMBER),
                members=[person(session, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER)
                         for i in range(3)])


def open_request(session: Session, ledger: Ledger, w: dict[str, Any], tier: str = "lds",
                 **kw: Any) -> ExtractRequest:
    fields = ["identity.name", "labs.hba1c"] if tier == "rif" else ["labs.hba1c"]
    abroad = kw.pop("cross_border", False)
    base: dict[str, Any] = dict(purpose="Efficacy analysis of drug X by age and sex",
                                tier=tier, fields=fields,
                                recipient_org=HOSPITAL_ORG if tier == "rif" else
                                "us-pharma" if abroad else EXAMPLE_PHARMA,
                                recipient_key=w["pub"], use_from=TODAY,
                                use_until=TODAY + dt.timedelta(days=180))
    base.update(kw)
    return ex.create_request(session, ledger, actor=w["researcher" if tier == "rif" else
                                                       "sponsor"], study_code=STUDY,
                             data=RequestIn(**base))


def sign(session: Session, ledger: Ledger, actor: Actor, req: ExtractRequest, kind: str,
         approve: bool = True, **kw: Any) -> ExtractDecision:
    return extract_review.decide(session, ledger, actor=actor, request_id=req.id,
                                 data=DecisionIn(kind=kind, approve=approve,
                                                 username=actor.username, password=PASSWORD,
                                                 **kw), config=CFG)


def decisions(session: Session, req: ExtractRequest) -> int:
    return session.execute(select(func.count()).select_from(ExtractDecision).where(
        ExtractDecision.request_id == req.id)).scalar_one()


# ── First review (初审, §11.3.4.6) ─────────────────────────────────────────────────────────────

@pytest.mark.parametrize("tier", ["lds", "rif"])
def test_the_committee_votes_only_after_the_officers_first_review(
        session: Session, ledger: Ledger, world: dict[str, Any], tier: str) -> None:
    req = open_request(session, ledger, world, tier)
    assert ex.needs(req)[0] == "officer"
    with pytest.raises(RuleViolation) as e:
        sign(session, ledger, world["members"][0], req, "vote")
    assert (e.value.field, e.value.clause) == ("kind", "§11.3.4.6")
    assert "first review comes first" in e.value.message
    with i18n.language("zh"), pytest.raises(RuleViolation) as e:
        sign(session, ledger, world["members"][0], req, "vote")
    assert "初审" in e.value.message
    if tier == "rif":
        with pytest.raises(RuleViolation):
            sign(session, ledger, world["ethics"], req, "ethics",
                 reference=world["approval"].id)
    assert decisions(session, req) == 0  # nothing written
    sign(session, ledger, world["officer"], req, "officer")
    sign(session, ledger, world["members"][0], req, "vote")
    assert ex.public(session, req)["approvals"]["yes"] == 1
    with pytest.raises(Conflict):  # one first review
        sign(session, ledger, world["officer"], req, "officer")


@pytest.mark.parametrize("tier", ["lds", "rif"])
def test_the_inbox_tells_each_approver_what_waits_for_them(
        session: Session, ledger: Ledger, world: dict[str, Any], tier: str) -> None:
    def kinds(actor: Actor) -> list[str]:
        return [m.kind for m in sign_off.inbox_for(session, actor=actor)]

    req = open_request(session, ledger, world, tier)
    first = sign_off.inbox_for(session, actor=world["officer"])
    assert [m.kind for m in first] == ["extract.waits.officer"]
    assert first[0].text.startswith("a first review waits for you")
    assert first[0].link == f"/extracts/{req.id}"
    assert kinds(world["members"][0]) == [] and kinds(world["ethics"]) == []  # not yet
    assert kinds(world["sponsor"]) == []
    sign(session, ledger, world["officer"], req, "officer")
    for m in world["members"]:
        assert kinds(m) == ["extract.waits.committee"]
    assert kinds(world["ethics"]) == (["extract.waits.ethics"] if tier == "rif" else [])
    assert kinds(world["officer"]) == ["extract.waits.officer"]  # told once, not again
    assert kinds(world["sponsor"]) == []


def test_a_refusal_at_first_review_rejects_the_request(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = open_request(session, ledger, world)
    sign(session, ledger, world["officer"], req, "officer", approve=False)
    assert req.status == "rejected" and "first review" in (req.status_reason or "")
    with pytest.raises(Conflict):
        sign(session, ledger, world["members"][0], req, "vote")


def test_a_puf_is_decided_by_the_officers_approval_alone(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = open_request(session, ledger, world, "puf")
    assert ex.needs(req) == ["officer"] and req.committee_roll is None
    sign(session, ledger, world["officer"], req, "officer")
    assert req.status == "approved"


# ── The committee's vote over the frozen roll (Appendix C) ──────────────────────────────────

def test_the_roll_is_frozen_when_the_request_opens(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = open_request(session, ledger, world)
    assert req.committee_roll == sorted(m.user_id for m in world["members"])
    late = person(session, ledger, "dsc_late", Role.COMMITTEE_MEMBER)
    sign(session, ledger, world["officer"], req, "officer")
    with pytest.raises(PermissionDenied) as e:  # not on the roll: cannot vote
        sign(session, ledger, late, req, "vote")
    assert e.value.clause == "Appendix C" and "roll" in e.value.message
    assert ex.public(session, req)["approvals"]["committee_members"] == 3
    assert decisions(session, req) == 1


def test_two_of_three_yes_then_the_third_leaves_is_not_approved(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    m0, m1, m2 = world["members"]
    req = open_request(session, ledger, world)
    sign(session, ledger, world["officer"], req, "officer")
    sign(session, ledger, world["sponsor"], req, "dua")
    sign(session, ledger, m0, req, "vote")
    sign(session, ledger, m1, req, "vote")
    admin.set_active(session, ledger, actor=SYSTEM, username=m2.username, active=False)
    st = ex.approval_state(session, req)
    assert (st.yes, st.members, st.left) == (2, 3, 1)
    assert not st.done["committee"] and not st.approved
    assert st.rejected is not None and "left without voting" in st.rejected
    shown = ex.public(session, req)["approvals"]
    assert shown["committee_left"] == 1 and shown["problem"] == st.rejected
    with pytest.raises(PermissionDenied) as e:  # a member who left cannot vote
        sign(session, ledger, m2, req, "vote")
    assert e.value.clause == "Appendix C"
    assert req.status == "pending"


def test_a_member_whose_role_was_removed_cannot_vote_and_is_no_yes(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    m0, m1, m2 = world["members"]
    req = open_request(session, ledger, world)
    sign(session, ledger, world["officer"], req, "officer")
    admin.revoke_role(session, ledger, actor=SYSTEM, username=m2.username,
                      role=Role.COMMITTEE_MEMBER)
    with pytest.raises(PermissionDenied):
        sign(session, ledger, m2, req, "vote")
    sign(session, ledger, m0, req, "vote")  # this settles it: 2 of 3 can no longer pass
    assert req.status == "rejected" and "two thirds" in (req.status_reason or "")
    with pytest.raises(Conflict):
        sign(session, ledger, m1, req, "vote")


def test_a_yes_cast_while_a_member_stands_still_counts_after_they_leave(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    m0, m1, m2 = world["members"]
    req = open_request(session, ledger, world)
    sign(session, ledger, world["officer"], req, "officer")
    sign(session, ledger, m0, req, "vote")
    admin.set_active(session, ledger, actor=SYSTEM, username=m0.username, active=False)
    sign(session, ledger, m1, req, "vote")
    sign(session, ledger, world["sponsor"], req, "dua")
    sign(session, ledger, m2, req, "vote")
    assert req.status == "approved"
    assert (ex.approval_state(session, req).yes, ex.approval_state(session, req).left) == (3, 0)


@pytest.mark.parametrize(("tier", "cross_border"), [("lds", False), ("rif", False),
                                                    ("puf", True)])
def test_a_vote_needs_a_committee_of_at_least_three(
        session: Session, ledger: Ledger, world: dict[str, Any], tier: str,
        cross_border: bool) -> None:
    admin.set_active(session, ledger, actor=SYSTEM, username="dsc2", active=False)
    before = session.execute(select(func.count()).select_from(ExtractRequest)).scalar_one()
    with pytest.raises(RuleViolation) as e:
        open_request(session, ledger, world, tier, cross_border=cross_border)
    assert (e.value.field, e.value.clause) == ("tier", "Appendix C")
    assert "at least 3 members" in e.value.message and "has 2" in e.value.message
    assert "a committee needs at least 3 members" in e.value.message
    after = session.execute(select(func.count()).select_from(ExtractRequest)).scalar_one()
    assert after == before  # nothing written
    assert open_request(session, ledger, world, "puf").status == "pending"  # no vote needed


# ── The data-use agreement (Appendix E.3) ───────────────────────────────────────────────────

E3_TERMS = {"purpose", "deidentified_only", "no_other_use", "no_reidentification",
            "no_linkage", "no_contact", "no_onward_disclosure", "protective_measures",
            "breach_notification", "liability", "termination", "destruction", "survival"}


def test_the_agreement_shows_every_e3_term_and_its_hash(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = open_request(session, ledger, world)
    view = extract_review.agreement_view(session, actor=world["sponsor"], request_id=req.id)
    assert {t["key"] for t in view["terms"]} == E3_TERMS
    for t in view["terms"]:
        assert t["zh"] in view["text"] and t["en"] in view["text"]
    assert view["version"] in view["text"]
    assert view["terms_sha256"] == hashlib.sha256(view["text"].encode()).hexdigest()
    assert "立即通知数据提供方" in view["text"]  # breach notification, in full
    assert ex.DUA_TERMS == agreement.DUA_TERMS and len(ex.DUA_TERMS) == len(E3_TERMS)
    outsider = person(session, ledger, "sponsor2", Role.SPONSOR)
    with pytest.raises(PermissionDenied):
        extract_review.agreement_view(session, actor=outsider, request_id=req.id)


def test_each_signature_binds_the_request_and_the_terms(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = open_request(session, ledger, world)
    view = extract_review.agreement_view(session, actor=world["sponsor"], request_id=req.id)
    with pytest.raises(Conflict) as e:  # signed over terms the signer did not read
        sign(session, ledger, world["sponsor"], req, "dua", terms_sha256="0" * 64)
    assert e.value.field == "terms_sha256"
    d = sign(session, ledger, world["sponsor"], req, "dua",
             terms_sha256=view["terms_sha256"])
    assert d.terms_sha256 == view["terms_sha256"] == agreement.terms_sha256()
    assert d.request_sha256 == hashlib.sha256(extract_review.request_digest(req)).hexdigest()
    both = json.dumps({"request_sha256": d.request_sha256, "terms_sha256": d.terms_sha256,
                       "terms_version": agreement.DUA_VERSION}, sort_keys=True).encode()
    signed = session.get(Signature, d.signature_id)
    assert signed is not None
    assert signed.content_hash == hashlib.sha256(both).hexdigest() == view["content_sha256"]
    shown = extract_review.detail(session, actor=world["sponsor"], request_id=req.id)
    assert shown["decisions"][0]["terms_sha256"] == view["terms_sha256"]


# ── RIF: ethics approval of identifiable use of the current protocol version (§11.3.4.2) ───

def test_rif_ethics_needs_identifiable_use_of_the_current_protocol_version(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    committee = session.get(EthicsCommittee, world["approval"].committee_id)
    plain = approve(session, ledger, world["study"], committee)  # no identifiable use
    req = open_request(session, ledger, world, "rif")
    sign(session, ledger, world["officer"], req, "officer")

    def refused(reference: str) -> str:
        with pytest.raises(InvalidInput) as e:
            sign(session, ledger, world["ethics"], req, "ethics", reference=reference)
        assert (e.value.field, e.value.clause) == ("reference", "§11.3.4.2")
        return e.value.message

    assert "identifiable use" in refused(plain.id)
    assert "this study" in refused("no-such-approval")
    registry.amend_protocol(session, ledger, actor=SETUP, study_code=STUDY,
                            summary="new arm", protocol=make_protocol("2.0"))
    # the v1 approval covered identifiable use, but v2 is the protocol in force now
    assert "current protocol version 2.0" in refused(world["approval"].id)
    v2 = approve(session, ledger, world["study"], committee, protocol_version=2,
                 identifiable_use=True)
    assert decisions(session, req) == 1
    sign(session, ledger, world["ethics"], req, "ethics", reference=v2.id)
    assert ex.approval_state(session, req).done["ethics"]


def test_only_an_approving_decision_can_cover_identifiable_use(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    committee = session.get(EthicsCommittee, world["approval"].committee_id)
    with pytest.raises(InvalidInput) as e:
        approve(session, ledger, world["study"], committee, decision="rejected",
                identifiable_use=True)
    assert e.value.field == "identifiable_use"
