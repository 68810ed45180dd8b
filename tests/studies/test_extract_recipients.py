"""Who may receive what (§11.3.4.6) and data leaving the country (§7 p), issue 14 items 5 and 7:
requests name a registered organisation; a RIF stays inside the hospital, a company gets PUF or
LDS only; the organisation's registered country decides whether data leave the country; the
limit of 250 records about persons is cumulative per organisation across requests and studies
and is lifted only by a recorded approval of the relevant authority."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from factories import (
    EXAMPLE_PHARMA,
    HOSPITAL_ORG,
    PASSWORD,
    affiliate,
    make_extract_study,
    make_user,
    person,
    security_committee,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import organisations as orgs
from studies.accounts.config import AuthConfig
from studies.extracts import recipients
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.models import ExtractRequest
from studies.extracts.schemas import DecisionIn, RequestIn
from studies.kernel.actor import SYSTEM, Actor
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from studies.kernel.roles import Role

CFG = AuthConfig(second_factor_enforced=False)
STUDY = "EXT-2026-01"
TODAY = dt.date.today()


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def age_pub(tmp: Path) -> str:
    ident = tmp / "recipient.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    return next(line.split(": ", 1)[1] for line in ident.read_text().splitlines()
                if line.startswith("# public key:"))


def overseas(session: Session, ledger: Ledger, code: str = "us-pharma",
             kind: str = "company") -> Any:
    return orgs.register_organisation(session, ledger, actor=SYSTEM, code=code,
                                      name_zh="美国药企", name_en=f"US Pharma {code}",
                                      kind=kind, country="us")


@pytest.fixture
def world(session: Session, ledger: Ledger, tmp_path: Path) -> dict[str, Any]:
    made = make_extract_study(session, ledger, STUDY, n=3, identifiable=(0, 1, 2),
                              cross_border=(1, 2), with_data=False)
    security_committee(session, ledger)
    return dict(made, pub=age_pub(tmp_path),
                sponsor=person(session, ledger, "sponsor1", Role.SPONSOR, EXAMPLE_PHARMA),
                researcher=person(session, ledger, "researcher1", Role.STATISTICIAN,
                                  HOSPITAL_ORG),
                officer=person(session, ledger, "dso", Role.SECURITY_OFFICER))


def ask(session: Session, ledger: Ledger, actor: Actor, pub: str, *, study: str = STUDY,
        **kw: Any) -> ExtractRequest:
    base: dict[str, Any] = dict(
        purpose="Efficacy analysis of drug X by age and sex", tier="lds",
        fields=["labs.hba1c"], recipient_org=EXAMPLE_PHARMA, recipient_key=pub,
        use_from=TODAY, use_until=TODAY + dt.timedelta(days=180))
    base.update(kw)
    return ex.create_request(session, ledger, actor=actor, study_code=study,
                             data=RequestIn(**base))


def requests_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(ExtractRequest)).scalar_one()


# ── The registry ─────────────────────────────────────────────────────────────────────────────

def test_organisations_are_registered_with_a_kind_and_an_iso_country(
        session: Session, ledger: Ledger) -> None:
    org = overseas(session, ledger)
    assert (org.kind, org.country, org.label) == ("company", "US", "美国药企 / US Pharma us-pharma")
    assert orgs.country_label("US") == 'United States'
    assert orgs.find_organisation(session, org.id) is org
    assert orgs.find_organisation(session, "us-pharma") is org
    entry = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "organisation.register")).scalar_one()
    assert entry.entity_id == org.id and '"US"' in (entry.changes or "")
    for field, kw in (("country", dict(country="XX")), ("country", dict(country="China")),
                      ("kind", dict(kind="pharma")), ("code", dict(code="a b")),
                      ("name_zh", dict(name_zh="  "))):
        args: dict[str, Any] = dict(code="other", name_zh="其他", name_en="Other", kind="company",
                                    country="CN")
        with pytest.raises(InvalidInput) as e:
            orgs.register_organisation(session, ledger, actor=SYSTEM, **(args | kw))
        assert e.value.field == field
    with pytest.raises(Conflict) as c:
        overseas(session, ledger)
    assert c.value.field == "code"


def test_one_hospital_itself_and_one_organisation_per_account(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    with pytest.raises(Conflict) as c:
        orgs.register_organisation(session, ledger, actor=SYSTEM, code="second-hospital",
                                   name_zh="另一本院", name_en="Second self", kind="hospital",
                                   country="CN")
    assert c.value.field == "kind"
    us = overseas(session, ledger)
    orgs.affiliate(session, ledger, actor=SYSTEM, username="sponsor1", organisation="us-pharma")
    assert orgs.organisation_of(session, world["sponsor"].user_id) is us  # moved, not added
    assert orgs.members_of(session, us.id) == ["sponsor1"]
    assert "sponsor1" not in orgs.members_of(session, orgs.find_organisation(
        session, EXAMPLE_PHARMA).id)
    with pytest.raises(InvalidInput) as e:
        orgs.affiliate(session, ledger, actor=SYSTEM, username="sponsor1", organisation="nope")
    assert e.value.field == "organisation"
    with pytest.raises(PermissionDenied):  # the administrator's act
        orgs.affiliate(session, ledger, actor=world["officer"], username="sponsor1",
                       organisation=None)


# ── Tiers by recipient (§11.3.4.6) ───────────────────────────────────────────────────────────

def test_a_company_account_cannot_request_a_rif(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    before = requests_count(session)
    for org in (EXAMPLE_PHARMA, HOSPITAL_ORG):  # naming the hospital does not help
        with pytest.raises(PermissionDenied) as e:
            ask(session, ledger, world["sponsor"], world["pub"], tier="rif", recipient_org=org,
                fields=["identity.name", "labs.hba1c"])
        assert e.value.clause == "§11.3.4.6" and "company" in e.value.message
    assert requests_count(session) == before
    # PUF and LDS it may have
    assert ask(session, ledger, world["sponsor"], world["pub"], tier="puf").tier == "puf"
    assert ask(session, ledger, world["sponsor"], world["pub"], tier="lds").tier == "lds"


def test_a_rif_to_anyone_but_the_hospital_is_refused_even_for_a_hospital_researcher(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    for code, kind in (("other-hospital", "institution"), ("regulator", "government")):
        orgs.register_organisation(session, ledger, actor=SYSTEM, code=code, name_zh=code,
                                   name_en=code, kind=kind, country="CN")
    for org in (EXAMPLE_PHARMA, "other-hospital", "regulator"):
        with pytest.raises(PermissionDenied) as e:
            ask(session, ledger, world["researcher"], world["pub"], tier="rif",
                recipient_org=org, fields=["identity.name", "labs.hba1c"])
        assert e.value.clause == "§11.3.4.6"
        assert ask(session, ledger, world["researcher"], world["pub"], tier="lds",
                   recipient_org=org).tier == "lds"


def test_a_rif_goes_only_to_accounts_of_the_hospital(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    make_user(session, ledger, "outsider", Role.STATISTICIAN)  # belongs to no organisation
    with pytest.raises(PermissionDenied) as e:
        ask(session, ledger, world["researcher"], world["pub"], tier="rif",
            recipient_org=HOSPITAL_ORG, recipients=["outsider"],
            fields=["identity.name", "labs.hba1c"])
    assert e.value.clause == "§11.3.4.6" and "outsider" in e.value.message
    unaffiliated = person(session, ledger, "unaffiliated", Role.STATISTICIAN)
    with pytest.raises(PermissionDenied):
        ask(session, ledger, unaffiliated, world["pub"], tier="rif", recipient_org=HOSPITAL_ORG,
            fields=["identity.name", "labs.hba1c"])


def test_a_hospital_internal_rif_is_accepted(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = ask(session, ledger, world["researcher"], world["pub"], tier="rif",
              recipient_org=HOSPITAL_ORG, fields=["identity.name", "labs.hba1c"])
    assert req.status == "pending" and req.recipient_org_id == orgs.hospital(session).id
    assert req.recipient_org == "本院 / The Hospital" and not req.cross_border
    assert ex.public(session, req)["recipient"]["kind"] == "hospital"


def test_recipient_accounts_of_a_third_organisation_are_refused(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    overseas(session, ledger)
    person(session, ledger, "us1", Role.SPONSOR, "us-pharma")
    with pytest.raises(InvalidInput) as e:
        ask(session, ledger, world["sponsor"], world["pub"], recipients=["us1"])
    assert e.value.field == "recipients"


def test_an_unknown_organisation_is_refused_naming_the_field(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        ask(session, ledger, world["sponsor"], world["pub"], recipient_org="Example Pharma Ltd")
    assert e.value.field == "recipient_org" and "registered" in e.value.message


# ── Cross-border (§7 p) ──────────────────────────────────────────────────────────────────────

def test_cross_border_follows_the_recipients_registered_country(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    home = ask(session, ledger, world["sponsor"], world["pub"], tier="puf")
    assert home.cross_border is False and home.persons is None
    assert ex.needs(home) == ["officer"]
    overseas(session, ledger)
    affiliate(session, ledger, "sponsor1", "us-pharma")
    abroad = ask(session, ledger, world["sponsor"], world["pub"], tier="puf",
                 recipient_org="us-pharma")
    assert abroad.cross_border is True
    assert ex.needs(abroad) == ["officer", "committee"]
    assert "cross_border" in ex.required_scopes(abroad)
    assert abroad.persons == 2  # the two subjects who consented to cross-border transfer
    # a client that still says otherwise is told why, and nothing is written
    before = requests_count(session)
    for org, said in (("us-pharma", False), (EXAMPLE_PHARMA, True)):
        if org == EXAMPLE_PHARMA:
            affiliate(session, ledger, "sponsor1", EXAMPLE_PHARMA)
        with pytest.raises(InvalidInput) as e:
            ask(session, ledger, world["sponsor"], world["pub"], tier="puf", recipient_org=org,
                cross_border=said)
        assert e.value.field == "cross_border" and "registered country" in e.value.message
    assert requests_count(session) == before
    assert ask(session, ledger, world["sponsor"], world["pub"], tier="puf",
               cross_border=False).cross_border is False  # agreeing is accepted


def test_the_home_country_is_the_hospitals(session: Session, ledger: Ledger) -> None:
    assert orgs.home_country(session) == "CN"  # until the hospital is registered
    us = overseas(session, ledger)
    assert orgs.is_abroad(session, us)
    orgs.register_organisation(session, ledger, actor=SYSTEM, code="us-hospital",
                               name_zh="美国医院", name_en="US Hospital", kind="hospital",
                               country="US")
    assert orgs.home_country(session) == "US" and not orgs.is_abroad(session, us)


@pytest.mark.slow
def test_the_limit_is_cumulative_per_organisation_across_requests_and_studies_and_an_authority_approval_lifts_it(  # noqa: E501
        session: Session, ledger: Ledger, tmp_path: Path) -> None:
    """Two studies of 130 subjects, every one consented to cross-border transfer: the first
    request to the US company counts 130 records about persons, the second (another study)
    would make 260 > 250 and is refused naming §7 p; once the data security officer records
    the authority's approval it is accepted."""
    n = 130
    make_extract_study(session, ledger, "CB-A", n=n, cross_border=tuple(range(n)),
                       with_data=False)
    make_extract_study(session, ledger, "CB-B", n=n, cross_border=tuple(range(n)),
                       with_data=False, prefix="S01-Y")
    security_committee(session, ledger)
    pub = age_pub(tmp_path)
    us = overseas(session, ledger)
    sponsor = person(session, ledger, "us1", Role.SPONSOR, "us-pharma")
    officer = person(session, ledger, "dso", Role.SECURITY_OFFICER)
    assert recipients.cross_border_allowance(session, us.id) == 250
    first = ask(session, ledger, sponsor, pub, study="CB-A", tier="puf",
                recipient_org="us-pharma")
    assert (first.cross_border, first.persons) == (True, n)
    assert recipients.cross_border_total(session, us.id) == n
    assert recipients.cross_border_allowance(session, us.id) == 250 - n
    assert recipients.cross_border_allowance(session, us.id, excluding=first.id) == 250
    before = requests_count(session)
    with pytest.raises(PermissionDenied) as e:
        ask(session, ledger, sponsor, pub, study="CB-B", tier="lds", recipient_org="us-pharma")
    assert e.value.clause == "§7 p" and "130" in e.value.message
    assert e.value.audit is not None and e.value.audit["outcome"] == "denied"
    assert requests_count(session) == before
    # a domestic recipient is not counted against it
    domestic = person(session, ledger, "cn1", Role.SPONSOR, EXAMPLE_PHARMA)
    assert ask(session, ledger, domestic, pub, study="CB-B").persons is None
    document = b"%PDF-1.7 approval of the relevant authority"
    appr = recipients.record_authority_approval(
        session, ledger, actor=officer, organisation="us-pharma", reference="国网信出境〔2026〕7号",
        approved_on=TODAY, document=document, filename="approval.pdf")
    assert appr.document_sha256 == hashlib.sha256(document).hexdigest()
    assert recipients.cross_border_allowance(session, us.id) is None
    second = ask(session, ledger, sponsor, pub, study="CB-B", tier="lds",
                 recipient_org="us-pharma")
    assert second.persons == n
    shown = ex.public(session, second)["recipient"]
    assert shown["cross_border_total"] == 2 * n and shown["cross_border_limit"] is None
    assert shown["authority_approval"] == "国网信出境〔2026〕7号"
    entry = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "extract.cross_border_approval")).scalar_one()
    assert entry.actor == "dso" and entry.entity_id == us.id
    assert appr.document_sha256 in (entry.changes or "")


def test_a_rejected_request_no_longer_counts(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    us = overseas(session, ledger)
    affiliate(session, ledger, "sponsor1", "us-pharma")
    req = ask(session, ledger, world["sponsor"], world["pub"], tier="puf",
              recipient_org="us-pharma")
    assert recipients.cross_border_total(session, us.id) == 2
    extract_review.decide(session, ledger, actor=world["officer"], request_id=req.id,
                          data=DecisionIn(kind="officer", approve=False, username="dso",
                                          password=PASSWORD))
    assert req.status == "rejected"
    assert recipients.cross_border_total(session, us.id) == 0


def test_only_the_officer_records_an_authority_approval_and_bad_input_is_named(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    overseas(session, ledger)
    kw: dict[str, Any] = dict(organisation="us-pharma", reference="REF-2026-1",
                              approved_on=TODAY, document=b"pdf", filename="a.pdf")
    with pytest.raises(PermissionDenied):
        recipients.record_authority_approval(session, ledger, actor=world["sponsor"], **kw)
    for field, bad in (("reference", dict(reference=" ")),
                       ("approved_on", dict(approved_on=TODAY + dt.timedelta(days=1))),
                       ("document", dict(document=b"")),
                       ("document", dict(document=b"x" * (recipients.MAX_DOCUMENT + 1)))):
        with pytest.raises(InvalidInput) as e:
            recipients.record_authority_approval(session, ledger, actor=world["officer"],
                                                 **(kw | bad))
        assert e.value.field == field
    with pytest.raises(NotFound):  # the organisation is the URL's
        recipients.record_authority_approval(session, ledger, actor=world["officer"],
                                             **(kw | dict(organisation="nope")))
