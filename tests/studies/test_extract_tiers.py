"""The tier rules have one home, ``studies/extracts/tiers.py``: the service and the build enforce
exactly what :data:`TIER_RULES` says, and a changed row changes what they enforce."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from factories import (
    EXAMPLE_PHARMA,
    HOSPITAL_ORG,
    PASSWORD,
    affiliate,
    make_extract_study,
    person,
)
from lxml import etree
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.accounts import organisations as orgs
from studies.accounts.config import AuthConfig
from studies.extracts import build as builder
from studies.extracts import custody as extract_custody
from studies.extracts import models
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.schemas import DecisionIn, RequestIn
from studies.extracts.tiers import K_MAX, TIER_RULES, Treatment
from studies.forms import odm
from studies.kernel.actor import SYSTEM
from studies.kernel.errors import InvalidInput
from studies.kernel.roles import Role

CFG = AuthConfig(second_factor_enforced=False)
STUDY = "EXT-2026-01"
TODAY = dt.date.today()
DECISIONS = {"officer": "officer", "committee": "vote", "dua": "dua", "ethics": "ethics"}
# A RIF goes only to the hospital itself (§11.3.4.6), whose country is the home country: it
# never leaves the country.
CASES = [(name, cb) for name in TIER_RULES for cb in (False, True)
         if not (TIER_RULES[name].inside_hospital_only and cb)]


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def world(request: pytest.FixtureRequest, session: Session, ledger: Ledger,
          tmp_path: Path) -> dict[str, Any]:
    n = 30 if request.node.get_closest_marker("data") else 3
    made = make_extract_study(session, ledger, STUDY, n=n, identifiable=tuple(range(0, n, 3)),
                              cross_border=(1, 2), with_data=n == 30)
    ident = tmp_path / "sponsor.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(line.split(": ", 1)[1] for line in ident.read_text().splitlines()
               if line.startswith("# public key:"))
    orgs.register_organisation(session, ledger, actor=SYSTEM, code="overseas-cro",
                               name_zh="境外研究机构", name_en="Overseas CRO",
                               kind="institution", country="US")
    researcher = person(session, ledger, "researcher1", Role.STATISTICIAN)
    affiliate(session, ledger, "researcher1", HOSPITAL_ORG)
    return dict(made, ident=ident, pub=pub, researcher=researcher,
                sponsor=person(session, ledger, "sponsor1", Role.SPONSOR),
                officer=person(session, ledger, "dso", Role.SECURITY_OFFICER),
                dm=person(session, ledger, "dm", Role.DATA_MANAGER),
                ethics=person(session, ledger, "ecm", Role.ETHICS_MEMBER),
                members=[person(session, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER)
                         for i in range(3)])


def request(session: Session, ledger: Ledger, w: dict[str, Any], tier: str,
            cross_border: bool = False, **kw: Any) -> Any:
    """A request of ``tier``: a RIF by a researcher of the hospital to the hospital itself
    (§11.3.4.6), any other by the sponsor, to an organisation in the US when ``cross_border``
    (the organisation's country decides), else to Example Pharma (China)."""
    inside = tier in TIER_RULES and TIER_RULES[tier].inside_hospital_only
    base: dict[str, Any] = dict(
        purpose="Efficacy analysis of drug X by age and sex", tier=tier,
        fields=["demographics.dob", "demographics.postcode", "demographics.ethnicity",
                "labs.hbsag", "labs.hba1c"],
        recipient_org=HOSPITAL_ORG if inside else "overseas-cro" if cross_border
        else EXAMPLE_PHARMA, recipient_key=w["pub"],
        use_from=TODAY, use_until=TODAY + dt.timedelta(days=180), k=5)
    base.update(kw)
    req = ex.create_request(session, ledger, actor=w["researcher" if inside else "sponsor"],
                            study_code=STUDY, data=RequestIn(**base))
    assert req.cross_border is cross_border
    return req


def decide(session: Session, ledger: Ledger, w: dict[str, Any], req: Any, need: str) -> None:
    """Give one approval the way its approver gives it."""
    kind = DECISIONS[need]
    applicant = w["researcher"] if req.requested_by == "researcher1" else w["sponsor"]
    by = {"officer": [w["officer"]], "vote": w["members"], "dua": [applicant],
          "ethics": [w["ethics"]]}[kind]
    for actor in by:
        extract_review.decide(session, ledger, actor=actor, request_id=req.id,
                              data=DecisionIn(
            kind=kind, username=actor.username, password=PASSWORD,
            reference=w["approval"].id if kind == "ethics" else None))


# ── The table itself ─────────────────────────────────────────────────────────────────────────

def test_the_models_tiers_and_labels_are_derived_from_the_table() -> None:
    assert models.TIERS == tuple(TIER_RULES) == ("puf", "lds", "rif")
    assert models.TIER_LABELS == {n: t.label for n, t in TIER_RULES.items()}
    for name, t in TIER_RULES.items():
        assert t.name == name and len(name) <= 3  # extract_request.tier is String(3)
        assert 2 <= t.min_k <= K_MAX
        assert "study" in t.consent_scopes
        if t.treatment is Treatment.AGGREGATE:
            assert t.min_cell_count is not None and not t.writes_clinical_odm
        if t.treatment is Treatment.DEIDENTIFY:
            assert t.l_diversity is not None and t.max_suppression is not None
        if t.allows_direct_identifiers:
            assert t.treatment is Treatment.IDENTIFIABLE


def test_an_unknown_tier_is_refused_with_the_message_it_always_had(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        request(session, ledger, world, "xyz")
    assert e.value.field == "tier"
    assert e.value.message == 'tier must be puf, lds or rif'


# ── The service enforces the table ───────────────────────────────────────────────────────────

@pytest.mark.parametrize(("tier", "cross_border"), CASES)
def test_each_tier_needs_exactly_the_approvals_of_its_row(
        session: Session, ledger: Ledger, world: dict[str, Any], tier: str,
        cross_border: bool) -> None:
    rule = TIER_RULES[tier]
    req = request(session, ledger, world, tier, cross_border=cross_border, k=rule.min_k)
    needed = rule.approvals_needed(cross_border)
    assert ex.needs(req) == needed == ex.approval_state(session, req).needs
    assert ex.public(session, req)["approvals"]["needs"] == needed
    assert ex.required_scopes(req) == rule.scopes_needed(cross_border)
    assert ("cross_border" in ex.required_scopes(req)) is cross_border
    for need in DECISIONS:
        if need not in needed:
            with pytest.raises(InvalidInput) as e:
                decide(session, ledger, world, req, need)
            assert e.value.field == "kind"
    for need in needed:
        assert req.status == "pending"
        decide(session, ledger, world, req, need)
    assert req.status == "approved"


@pytest.mark.parametrize("tier", list(TIER_RULES))
def test_each_tier_takes_k_from_its_min_k_to_k_max(
        session: Session, ledger: Ledger, world: dict[str, Any], tier: str) -> None:
    rule = TIER_RULES[tier]
    for k in (rule.min_k - 1, K_MAX + 1):
        with pytest.raises(InvalidInput) as e:
            request(session, ledger, world, tier, k=k)
        assert e.value.field == "k"
    assert request(session, ledger, world, tier, k=rule.min_k).k == rule.min_k
    assert request(session, ledger, world, tier, k=K_MAX).k == K_MAX


@pytest.mark.parametrize("tier", list(TIER_RULES))
def test_only_a_tier_that_allows_them_takes_direct_identifiers(
        session: Session, ledger: Ledger, world: dict[str, Any], tier: str) -> None:
    rule = TIER_RULES[tier]
    fields = ["identity.name", "labs.hba1c"]
    if rule.allows_direct_identifiers:
        assert request(session, ledger, world, tier, fields=fields).fields == fields
    else:
        with pytest.raises(InvalidInput) as e:
            request(session, ledger, world, tier, fields=fields)
        assert e.value.field == "fields" and "direct identifier" in e.value.message


def test_a_changed_row_changes_what_the_service_enforces(
        session: Session, ledger: Ledger, world: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing else decides: a PUF made to need the committee and k ≥ 3, and to take direct
    identifiers and identifiable consent, is enforced so."""
    monkeypatch.setitem(TIER_RULES, "puf", dataclasses.replace(
        TIER_RULES["puf"], min_k=3, needs_officer=False, needs_committee=True,
        allows_direct_identifiers=True, consent_scopes=("study", "identifiable")))
    with pytest.raises(InvalidInput) as e:
        request(session, ledger, world, "puf", k=2)
    assert e.value.field == "k"
    req = request(session, ledger, world, "puf", k=3, fields=["identity.name", "labs.hba1c"])
    assert ex.needs(req) == ["committee"]
    assert ex.required_scopes(req) == ["study", "identifiable"]
    with pytest.raises(InvalidInput):
        decide(session, ledger, world, req, "officer")
    decide(session, ledger, world, req, "committee")
    assert req.status == "approved"


# ── The build follows the table ──────────────────────────────────────────────────────────────

def open_package(w: dict[str, Any], package: Path, dest: Path) -> Path:
    plain = subprocess.run(["age", "-d", "-i", str(w["ident"]), str(package)], check=True,
                           capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "extract"


@pytest.mark.data
@pytest.mark.parametrize("tier", list(TIER_RULES))
def test_the_package_of_each_tier_is_as_its_row_says(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any, tmp_path: Path,
        tier: str) -> None:
    rule = TIER_RULES[tier]
    req = request(session, ledger, world, tier)
    for need in rule.approvals_needed(False):
        decide(session, ledger, world, req, need)
    extract_custody.queue_build(session, ledger, actor=world["dm"], request_id=req.id)
    keys = builder.BuildKeys(deid_key=state.keys.deid_key,
                             signing_key=state.keys.signing_key,
                             code_index=state.keys.code_index_keys())
    req = builder.build(session, ledger, request_id=req.id, keys=keys,
                        out_dir=tmp_path / "out")
    root = open_package(world, tmp_path / "out" / req.package_file, tmp_path / "opened")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["tier"] == tier
    assert (manifest["data_use_agreement"] == list(ex.DUA_TERMS)) is rule.needs_dua
    assert (manifest["data_use_agreement"] is None) is not rule.needs_dua
    clinical = etree.parse(str(root / "odm.xml")).getroot().find(f"{{{odm.NS}}}ClinicalData")
    assert (clinical is not None) is rule.writes_clinical_odm
    deidentification = manifest["deidentification"]
    if rule.treatment is Treatment.AGGREGATE:
        assert deidentification["min_count"] == rule.min_cell_count
    elif rule.treatment is Treatment.DEIDENTIFY:
        assert deidentification["k"] == req.k
        assert "subject_token" in (root / "data/labs.csv").read_text().splitlines()[0]
    else:
        assert deidentification == {"note": "identifiable (RIF)"}
    identifiable = sum(1 for i in range(30) if i % 3 == 0)
    if "identifiable" in rule.consent_scopes:
        assert manifest["exclusions"] == {"consent does not cover identifiable":
                                          30 - identifiable}
    else:
        assert "consent does not cover identifiable" not in manifest["exclusions"]
