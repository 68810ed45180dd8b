"""Extract requests, tiered approval and signed, encrypted transfers (issue 9, SPEC §7–8)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pycanon.anonymity as pa
import pyrage
import pytest
from factories import (
    HOSPITAL_ORG,
    PASSWORD,
    SETUP,
    affiliate,
    age_keys,
    make_extract_study,
    make_user,
    person,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.config import AuthConfig
from studies.consent import service as consent
from studies.consent.schemas import WithdrawalIn
from studies.entry.schemas import SaveIn
from studies.extracts import build as builder
from studies.extracts import custody as extract_custody
from studies.extracts import package as pkg
from studies.extracts import review as extract_review
from studies.extracts import service as ex
from studies.extracts.errors import BuildError, PackageError
from studies.extracts.schemas import DecisionIn, OverrideIn, RequestIn
from studies.kernel.actor import Actor
from studies.kernel.errors import Conflict, InvalidInput, PermissionDenied, RuleViolation
from studies.kernel.roles import Role

CFG = AuthConfig(second_factor_enforced=False)
STUDY = "EXT-2026-01"
TODAY = dt.date.today()


def request_in(pub: str, **kw: Any) -> RequestIn:
    base: dict[str, Any] = dict(
        purpose="Efficacy analysis of drug X by age and sex", tier="lds",
        fields=["demographics.dob", "demographics.postcode", "demographics.ethnicity",
                "labs.hbsag", "labs.hba1c", "labs.lab_comment"],
        recipient_org=HOSPITAL_ORG if kw.get("tier") == "rif" else "example-pharma",
        recipient_key=pub, use_from=TODAY, use_until=TODAY + dt.timedelta(days=180))
    base.update(kw)
    return RequestIn(**base)


def vote(session: Session, ledger: Ledger, actor: Actor, rid: str, kind: str,
         approve: bool = True, **kw: Any) -> Any:
    return extract_review.decide(session, ledger, actor=actor, request_id=rid,
                                 data=DecisionIn(
        kind=kind, approve=approve, username=actor.username, password=PASSWORD, **kw))


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def world(request: pytest.FixtureRequest, session: Session, ledger: Ledger,
          tmp_path: Path) -> dict[str, Any]:
    """Accounts, keys and a study; 30 subjects with data for build tests (``@pytest.mark.data``),
    3 without for the approval rules."""
    n = 30 if request.node.get_closest_marker("data") else 3
    made = make_extract_study(session, ledger, STUDY, n=n, identifiable=tuple(range(0, n, 3)),
                              cross_border=(1, 2), with_data=n == 30)
    ident, pub = age_keys(tmp_path)
    researcher = person(session, ledger, "researcher1", Role.STATISTICIAN)
    affiliate(session, ledger, "researcher1", HOSPITAL_ORG)  # a RIF stays in the hospital
    w = dict(made, ident=ident, pub=pub, researcher=researcher,
             sponsor=person(session, ledger, "sponsor1", Role.SPONSOR),
             officer=person(session, ledger, "dso", Role.SECURITY_OFFICER),
             dm=person(session, ledger, "dm", Role.DATA_MANAGER),
             ethics=person(session, ledger, "ecm", Role.ETHICS_MEMBER),
             members=[person(session, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER)
                      for i in range(3)])
    return w


def keys_of(state: Any) -> builder.BuildKeys:
    return builder.BuildKeys(deid_key=state.keys.deid_key, signing_key=state.keys.signing_key,
                             code_index=state.keys.code_index_keys())


def approved_lds(session: Session, ledger: Ledger, w: dict[str, Any], **kw: Any) -> Any:
    """An approved request (LDS, or a RIF by the hospital's researcher)."""
    applicant = w["researcher"] if kw.get("tier") == "rif" else w["sponsor"]
    req = ex.create_request(session, ledger, actor=applicant, study_code=STUDY,
                            data=request_in(w["pub"], **kw))
    vote(session, ledger, w["officer"], req.id, "officer")  # the first review (初审)
    for m in w["members"]:
        vote(session, ledger, m, req.id, "vote")
    vote(session, ledger, applicant, req.id, "dua")
    if req.tier == "rif":
        vote(session, ledger, w["ethics"], req.id, "ethics", reference=w["approval"].id)
    assert req.status == "approved"
    return req


def build_it(session: Session, ledger: Ledger, w: dict[str, Any], req: Any, state: Any,
             out: Path) -> Any:
    extract_custody.queue_build(session, ledger, actor=w["dm"], request_id=req.id)
    return builder.build(session, ledger, request_id=req.id, keys=keys_of(state), out_dir=out)


def open_with_age(package: Path, ident: Path, dest: Path) -> Path:
    """Decrypt with the age CLI and unpack with tar: tools we did not write."""
    plain = subprocess.run(["age", "-d", "-i", str(ident), str(package)], check=True,
                           capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "extract"


# ── Requests and approvals ────────────────────────────────────────────────────────────────────

def test_request_refuses_a_bad_age_key_and_direct_identifiers_outside_rif(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                          data=request_in("age1notakey"))
    assert e.value.field == "recipient_key"
    with pytest.raises(InvalidInput) as e:
        ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                          data=request_in(world["pub"], fields=["identity.name",
                                                                "labs.hba1c"]))
    assert e.value.field == "fields" and "direct identifier" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                          data=request_in(world["pub"], fields=["labs.nothing"]))
    assert e.value.field == "fields"
    with pytest.raises(PermissionDenied):
        ex.create_request(session, ledger, actor=world["officer"], study_code=STUDY,
                          data=request_in(world["pub"]))


def test_catalogue_shows_identifier_classification(session: Session, ledger: Ledger,
                                                   world: dict[str, Any]) -> None:
    cat = ex.field_catalogue(session, world["study"].id)
    assert cat["demographics.dob"].classification == "quasi_identifier"
    assert cat["labs.hbsag"].classification == "sensitive"
    assert cat["identity.name"].classification == "direct_identifier"


def test_lds_needs_more_than_two_thirds_of_the_committee_and_the_agreement(
        session: Session, ledger: Ledger, world: dict[str, Any]) -> None:
    req = ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                            data=request_in(world["pub"]))
    vote(session, ledger, world["officer"], req.id, "officer")  # the first review (初审)
    vote(session, ledger, world["members"][0], req.id, "vote")
    vote(session, ledger, world["members"][1], req.id, "vote")
    assert req.status == "pending"  # 2 of 3 is not more than two thirds
    with pytest.raises(Conflict):
        vote(session, ledger, world["members"][0], req.id, "vote")
    vote(session, ledger, world["members"][2], req.id, "vote")
    assert req.status == "pending"  # committee yes, agreement missing
    vote(session, ledger, world["sponsor"], req.id, "dua")
    assert req.status == "approved"
    st = ex.approval_state(session, req)
    assert (st.yes, st.members) == (3, 3)


def test_one_no_vote_of_three_rejects(session: Session, ledger: Ledger,
                                      world: dict[str, Any]) -> None:
    req = ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                            data=request_in(world["pub"]))
    vote(session, ledger, world["officer"], req.id, "officer")
    vote(session, ledger, world["members"][0], req.id, "vote", approve=False)
    assert req.status == "rejected" and "two thirds" in req.status_reason


def test_nobody_approves_their_own_request(session: Session, ledger: Ledger,
                                           world: dict[str, Any]) -> None:
    make_user(session, ledger, "both", Role.SPONSOR, Role.SECURITY_OFFICER)
    _, both = accounts.login(session, ledger, username="both", password=PASSWORD,
                             client="10.0.0.9", config=CFG)
    req = ex.create_request(session, ledger, actor=both, study_code=STUDY,
                            data=request_in(world["pub"], tier="puf",
                                            fields=["demographics.ethnicity"]))
    with pytest.raises(PermissionDenied) as e:
        vote(session, ledger, both, req.id, "officer")
    assert "own request" in str(e.value)


def test_rif_needs_a_current_ethics_approval(session: Session, ledger: Ledger,
                                             world: dict[str, Any]) -> None:
    req = ex.create_request(session, ledger, actor=world["researcher"], study_code=STUDY,
                            data=request_in(world["pub"], tier="rif",
                                            fields=["identity.name", "labs.hba1c"]))
    vote(session, ledger, world["officer"], req.id, "officer")
    for m in world["members"]:
        vote(session, ledger, m, req.id, "vote")
    vote(session, ledger, world["researcher"], req.id, "dua")
    assert req.status == "pending"
    with pytest.raises(InvalidInput) as e:
        vote(session, ledger, world["ethics"], req.id, "ethics", reference="nope")
    assert e.value.field == "reference"
    vote(session, ledger, world["ethics"], req.id, "ethics", reference=world["approval"].id)
    assert req.status == "approved"


# ── Build, package, open ─────────────────────────────────────────────────────────────────────

@pytest.mark.data
def test_lds_package_opens_with_age_and_minisign_is_k_anonymous_and_excludes_withdrawn(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    withdrawn = world["subjects"][4]
    rec = consent.consent_history(session, actor=SETUP, study_code=STUDY,
                                  subject_id=withdrawn.id)[-1]
    consent.withdraw_consent(session, ledger, actor=SETUP, study_code=STUDY,
                             consent_id=rec["id"], data=WithdrawalIn(
                                 withdrawn_at=dt.datetime.now(dt.UTC),
                                 reason="no longer wishes to take part"))
    req = approved_lds(session, ledger, world)
    req = build_it(session, ledger, world, req, state, tmp_path / "out")
    assert req.build_state in ("done", "blocked") and req.progress == 100
    package = tmp_path / "out" / req.package_file
    assert pkg.sha256_file(package) == req.package_sha256
    root = open_with_age(package, world["ident"], tmp_path / "opened")
    pub = tmp_path / "hospital.pub"
    pub.write_text(pkg.public_key_text(state.keys.signing_key))
    r = subprocess.run(["minisign", "-Vm", str(root / "manifest.json"), "-p", str(pub)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((root / "manifest.json").read_text())
    assert f"extract:{req.id}" in r.stdout and manifest["extract_id"] == req.id
    assert manifest["exclusions"] == {"consent withdrawn": 1}
    # the registered organisation by name (issue 14: named by its code in the request)
    assert manifest["request"]["recipient_org"] == "示例药企 / Example Pharma"
    assert manifest["snapshot"]["ledger_seq"] == req.snapshot_seq
    import base64

    text = json.dumps(manifest)
    deid_key = state.keys.deid_key
    assert deid_key.hex() not in text and base64.b64encode(deid_key).decode() not in text
    assert "offset_days" not in text
    demo = pl.read_parquet(root / "data/demographics.parquet")
    assert demo.height == 29 - manifest["deidentification"]["suppressed_subjects"]
    assert withdrawn.code not in demo["subject_token"].to_list()
    qis = ["dob", "postcode", "ethnicity"]
    pdf = pd.DataFrame({c: demo[c].fill_null("NA").to_list() for c in qis})
    assert pa.k_anonymity(pdf, qis) >= 5
    labs = pl.read_parquet(root / "data/labs.parquet")
    assert set(labs["subject_token"]) <= set(demo["subject_token"]) | set(
        labs["subject_token"])
    rows = list(csv.reader(open(root / "data/labs.csv", encoding="utf-8")))
    comments = [r[rows[0].index("lab_comment")] for r in rows[1:]]
    assert not any(c.startswith("=") for c in comments)
    dictionary = (root / "dictionary.csv").read_text(encoding="utf-8")
    assert "formula injection" in dictionary
    ledger_actions = session.execute(select(LedgerEntry.action).where(
        LedgerEntry.entity_id == req.id)).scalars().all()
    assert "extract.build" in ledger_actions


@pytest.mark.data
def test_receive_verifies_and_refuses_any_changed_byte(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    req = build_it(session, ledger, world, approved_lds(session, ledger, world), state,
                   tmp_path / "out")
    package = tmp_path / "out" / req.package_file
    ident, pub = world["ident"].read_text(), pkg.public_key_text(state.keys.signing_key)
    manifest = pkg.receive(package, identity=ident, signer_pub=pub, out=tmp_path / "ok")
    assert manifest["extract_id"] == req.id and (tmp_path / "ok/data/labs.csv").exists()
    # one flipped byte of the encrypted file
    bad = tmp_path / "bad.age"
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="decryption"):
        pkg.receive(bad, identity=ident, signer_pub=pub, out=tmp_path / "x1")
    assert not (tmp_path / "x1").exists()
    # a re-encrypted package with one changed data file
    root = open_with_age(package, world["ident"], tmp_path / "t")
    with open(root / "data/labs.csv", "a") as fh:
        fh.write("x\n")
    names = [str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file()]
    forged = tmp_path / "forged.age"
    pkg.encrypt_directory(root, names, forged, world["pub"])
    with pytest.raises(PackageError, match="file data/labs.csv"):
        pkg.receive(forged, identity=ident, signer_pub=pub, out=tmp_path / "x2")
    # a changed manifest
    (root / "data/labs.csv").write_bytes((tmp_path / "ok/data/labs.csv").read_bytes())
    m = json.loads((root / "manifest.json").read_text())
    m["tier"] = "puf"
    (root / "manifest.json").write_text(json.dumps(m))
    pkg.encrypt_directory(root, names, forged, world["pub"])
    with pytest.raises(PackageError, match="signature"):
        pkg.receive(forged, identity=ident, signer_pub=pub, out=tmp_path / "x3")
    # the wrong identity
    other, _ = age_keys(tmp_path / "o") if (tmp_path / "o").mkdir() is None else (None, None)
    with pytest.raises(PackageError, match="decryption"):
        pkg.receive(package, identity=other.read_text(), signer_pub=pub,
                    out=tmp_path / "x4")


@pytest.mark.data
def test_rif_holds_only_identifiable_consent_and_draws_identity_by_the_system(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    from factories import synthetic_identity

    from studies.subjects.crypto import blind_index, encrypt_identity
    from studies.subjects.identity import validate_identity
    from studies.subjects.models import CodeIndexEntry

    for i, subj in enumerate(world["subjects"]):  # the factory made subjects without identity
        ident = validate_identity(**synthetic_identity(i))
        kid, nonce, ct = encrypt_identity(ident, code=subj.code, key=state.keys.code_index_key)
        session.add(CodeIndexEntry(subject_id=subj.id, study_id=subj.study_id, code=subj.code,
                                   key_id=kid, nonce=nonce, ciphertext=ct,
                                   blind_index=blind_index(ident.resident_id,
                                                           key=state.keys.blind_index_key),
                                   blind_key_id="b"))
    session.flush()
    req = approved_lds(session, ledger, world, tier="rif",
                       fields=["identity.name", "labs.hba1c"])
    req = build_it(session, ledger, world, req, state, tmp_path / "out")
    root = open_with_age(tmp_path / "out" / req.package_file, world["ident"],
                         tmp_path / "opened")
    labs = pl.read_parquet(root / "data/labs.parquet")
    expected = {world["codes"][i] for i in range(0, 30, 3)}
    assert set(labs["subject"]) == expected
    ident = pl.read_parquet(root / "data/identity.parquet")
    assert ident.height == len(expected) and set(ident["subject"]) == expected
    assert sorted(ident["name"]) == sorted(synthetic_identity(i)["name"] for i in range(0, 30, 3))
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["exclusions"] == {"consent does not cover identifiable": 20}
    draw = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "extract.identity_draw")).scalar_one()
    assert draw.actor == "system"


@pytest.mark.data
def test_puf_is_aggregates_with_small_cells_withheld(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    req = ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                            data=request_in(world["pub"], tier="puf",
                                            fields=["demographics.ethnicity", "labs.hbsag",
                                                    "labs.hba1c"]))
    vote(session, ledger, world["officer"], req.id, "officer")
    assert req.status == "approved"
    req = build_it(session, ledger, world, req, state, tmp_path / "out")
    root = open_with_age(tmp_path / "out" / req.package_file, world["ident"],
                         tmp_path / "opened")
    cells = pl.read_parquet(root / "data/labs.parquet")
    assert "n" in cells.columns and "subject" not in cells.columns
    assert all(n is None or n >= 5 for n in cells["n"].to_list())


@pytest.mark.data
def test_downloads_only_by_named_recipients_and_failed_checks_block(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    req = build_it(session, ledger, world, approved_lds(session, ledger, world), state,
                   tmp_path / "out")
    other = person(session, ledger, "sponsor2", Role.SPONSOR)
    with pytest.raises(PermissionDenied):
        extract_custody.authorise_download(session, ledger, actor=other, request_id=req.id)
    req.build_state = "blocked"
    with pytest.raises(RuleViolation):
        extract_custody.authorise_download(session, ledger, actor=world["sponsor"],
                                           request_id=req.id)
    with pytest.raises(InvalidInput):
        extract_custody.override_checks(session, ledger, actor=world["dm"], request_id=req.id,
                           data=OverrideIn(reason="ok"))
    extract_custody.override_checks(session, ledger, actor=world["dm"], request_id=req.id,
                       data=OverrideIn(
                           reason="incomplete labs are expected at baseline"))
    extract_custody.authorise_download(session, ledger, actor=world["sponsor"], request_id=req.id)
    log = [(t.event, t.actor) for t in ex.transfers_of(session, req.id)]
    assert log == [("built", "dm"), ("check_override", "dm"), ("downloaded", "sponsor1")]
    history = extract_review.applicant_history(session, actor=world["officer"], request_id=req.id)
    assert history == []


@pytest.mark.data
def test_overdue_destruction_holds_further_requests_until_the_certificate(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    req = build_it(session, ledger, world, approved_lds(session, ledger, world), state,
                   tmp_path / "out")
    req.use_from, req.use_until = TODAY - dt.timedelta(days=100), TODAY - dt.timedelta(days=31)
    session.flush()
    overdue = extract_custody.overdue_for_officer(session, actor=world["officer"])
    assert [r.id for r in overdue] == [req.id]
    held = ex.create_request(session, ledger, actor=world["sponsor"], study_code=STUDY,
                             data=request_in(world["pub"]))
    assert held.status == "held"
    with pytest.raises(RuleViolation):
        vote(session, ledger, world["members"][0], held.id, "vote")
    hist = extract_review.applicant_history(session, actor=world["officer"], request_id=held.id)
    assert [h.request.id for h in hist] == [req.id]
    extract_custody.record_destruction(session, ledger, actor=world["sponsor"], request_id=req.id,
                          certificate=b"%PDF destruction certificate", filename="cert.pdf")
    assert held.status == "pending"
    assert extract_custody.overdue_for_officer(session, actor=world["officer"]) == []


@pytest.mark.data
def test_a_failed_build_says_why_and_leaves_no_package(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    req = approved_lds(session, ledger, world, k=50)  # 30 subjects cannot be 50-anonymous
    extract_custody.queue_build(session, ledger, actor=world["dm"], request_id=req.id)
    with pytest.raises(BuildError, match="k-anonymity"):
        builder.build(session, ledger, request_id=req.id, keys=keys_of(state),
                      out_dir=tmp_path / "out")
    assert list((tmp_path / "out").glob("*")) == [] if (tmp_path / "out").exists() else True


def test_age_keys_validate(tmp_path: Path) -> None:
    _, pub = age_keys(tmp_path)
    assert ex.validate_age_recipient(pub) == pub
    assert pyrage.x25519.Recipient.from_str(pub)


@pytest.mark.data
def test_build_reads_the_data_as_of_the_stated_time_and_refuses_unapproved(
        session: Session, ledger: Ledger, world: dict[str, Any], state: Any,
        tmp_path: Path) -> None:
    from studies.entry import service as entry

    as_of = dt.datetime.now(dt.UTC)
    first = world["codes"][0]
    entry.save_form(session, ledger, actor=SETUP, study_code=STUDY, subject_code=first,
                    event_name="baseline", form_name="labs",
                    data=SaveIn(base_version=1, values={
                        "hbsag": "0", "hba1c": "9.9", "lab_comment": "=HYPERLINK(\"x\")"},
                        reasons={"hba1c": "transcription_error"}),
                    now=as_of + dt.timedelta(seconds=5))
    req = ex.create_request(session, ledger, actor=world["researcher"], study_code=STUDY,
                            data=request_in(world["pub"], tier="rif", fields=["labs.hba1c"],
                                            as_of=as_of))
    with pytest.raises(RuleViolation):  # not approved yet
        extract_custody.queue_build(session, ledger, actor=world["dm"], request_id=req.id)
    vote(session, ledger, world["officer"], req.id, "officer")
    for m in world["members"]:
        vote(session, ledger, m, req.id, "vote")
    vote(session, ledger, world["researcher"], req.id, "dua")
    vote(session, ledger, world["ethics"], req.id, "ethics", reference=world["approval"].id)
    req = build_it(session, ledger, world, req, state, tmp_path / "out")
    root = open_with_age(tmp_path / "out" / req.package_file, world["ident"],
                         tmp_path / "opened")
    labs = pl.read_parquet(root / "data/labs.parquet")
    assert labs.filter(pl.col("subject") == first)["hba1c"].to_list() == ["5.0"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["snapshot"]["as_of"] == as_of.isoformat()
