"""Enrolment and the code index in the domain: random codes, encryption bound to the code,
duplicates by blind index, custodian-only lookups with reasons, subject access, key rotation."""

from __future__ import annotations

import json

import nacl.utils
import pytest
from factories import enrol_subject, make_active_study, make_user, synthetic_identity
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.keyring import Keyring
from studies.accounts.service import actor_for
from studies.kernel.actor import Actor
from studies.kernel.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleViolation
from studies.kernel.roles import Role
from studies.subjects import code_index, codes
from studies.subjects.crypto import CodeIndexKeys, key_id
from studies.subjects.errors import CodeIndexKeyError
from studies.subjects.identity import validate_identity
from studies.subjects.models import CodeIndexEntry, Subject

STUDY = "CI-2026-01"


def actor(session: Session, ledger: Ledger, username: str, *roles: Role,
          study: str | None = STUDY) -> Actor:
    return actor_for(session, make_user(session, ledger, username, *roles, study=study),
                     client="test")


@pytest.fixture
def ck(keys: Keyring) -> CodeIndexKeys:
    return keys.code_index_keys()


@pytest.fixture
def world(session: Session, ledger: Ledger) -> dict[str, object]:
    study, (s1, s2) = make_active_study(session, STUDY, sites=("S01", "S02"), ledger=ledger)
    return {"study": study, "s1": s1, "s2": s2,
            "inv": actor(session, ledger, "inv.wang", Role.INVESTIGATOR),
            "cust": actor(session, ledger, "cust.li", Role.CUSTODIAN, study=None)}


def entries(session: Session, action: str) -> list[LedgerEntry]:
    return list(session.execute(select(LedgerEntry).where(LedgerEntry.action == action)
                                .order_by(LedgerEntry.seq)).scalars())


def test_enrolment_issues_a_random_code_and_stores_identity_only_encrypted(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    subj = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                         site=world["s1"], n=7)
    assert subj.code.startswith("S01-") and codes.is_valid_code(subj.code)
    entry = session.execute(select(CodeIndexEntry)).scalar_one()
    ident = synthetic_identity(7)
    for value in ident.values():
        assert value.encode() not in entry.ciphertext
    assert entry.key_id == ck.current_id and entry.code == subj.code
    [e] = entries(session, "subject.enrol")
    assert (e.actor, e.subject, e.study) == ("inv.wang", subj.code, STUDY)
    for value in ident.values():
        assert value not in (e.changes or "") and value not in (e.reason or "")


def test_ciphertext_moved_to_another_code_does_not_decrypt(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    a = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=1)
    b = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=2)
    ea, eb = (session.execute(select(CodeIndexEntry).where(CodeIndexEntry.code == s.code))
              .scalar_one() for s in (a, b))
    ea.nonce, ea.ciphertext = eb.nonce, eb.ciphertext
    session.flush()
    with pytest.raises(CodeIndexKeyError, match="does not decrypt"):
        code_index.lookup_identity(session, ledger, actor=world["cust"], keys=ck, code=a.code,
                            reason="swap test check")


def test_duplicate_enrolment_is_found_by_blind_index_and_named_only_to_the_custodian(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    first = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                          site=world["s1"], n=3)
    # same person, other name spelling and site: the ID number decides
    with pytest.raises(Conflict) as err:
        enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s2"], n=3, name="别名")
    assert err.value.message == 'already enrolled in this study'
    assert first.code not in err.value.message and err.value.field == "resident_id"
    assert err.value.audit and err.value.audit["outcome"] == "failure"
    both = actor(session, ledger, "inv.cust", Role.INVESTIGATOR, Role.CUSTODIAN)
    with pytest.raises(Conflict) as err2:
        enrol_subject(session, ledger, ck, actor=both, study=world["study"], site=world["s1"],
                      n=3)
    assert first.code in err2.value.message
    assert session.execute(select(Subject)).scalars().all() == [first]


def test_the_same_person_may_enrol_in_another_study(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    other, (site,) = make_active_study(session, "CI-2026-02", sites=("S21",), ledger=ledger)
    inv2 = actor(session, ledger, "inv.two", Role.INVESTIGATOR, study=None)
    enrol_subject(session, ledger, ck, actor=inv2, study=world["study"], site=world["s1"], n=4)
    s = enrol_subject(session, ledger, ck, actor=inv2, study=other, site=site, n=4)
    assert s.code.startswith("S21-")
    found = code_index.lookup_code(session, ledger, actor=world["cust"], keys=ck,
                            resident_id=synthetic_identity(4)["resident_id"],
                            reason="patient called the ward")
    assert [st for st, _ in found.matches] == [STUDY, "CI-2026-02"]


def test_enrolment_gate_refuses_closed_study_foreign_site_and_non_investigators(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    other, (foreign,) = make_active_study(session, "CI-2026-03", sites=("S31",), ledger=ledger)
    with pytest.raises(InvalidInput) as err:
        enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=foreign)
    assert err.value.field == "site"
    monitor = actor(session, ledger, "mon.zhao", Role.MONITOR)
    with pytest.raises(PermissionDenied):
        enrol_subject(session, ledger, ck, actor=monitor, study=world["study"], site=world["s1"])
    with pytest.raises(PermissionDenied):  # custodian cannot enrol either
        enrol_subject(session, ledger, ck, actor=world["cust"], study=world["study"],
                      site=world["s1"])
    world["study"].status = "closed"
    session.flush()
    with pytest.raises(RuleViolation):
        enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"])
    assert session.execute(select(Subject)).first() is None


def test_lookups_need_a_reason_and_are_recorded_with_result(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    s = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=5)
    with pytest.raises(InvalidInput) as err:
        code_index.lookup_identity(session, ledger, actor=world["cust"], keys=ck, code=s.code,
                            reason="  ")
    assert err.value.field == "reason"
    r = code_index.lookup_identity(session, ledger, actor=world["cust"], keys=ck,
                            code=s.code.lower(), reason="serious adverse event follow-up")
    assert r.found and r.identity == validate_identity(**synthetic_identity(5))
    miss = code_index.lookup_identity(session, ledger, actor=world["cust"], keys=ck,
                                      code="S01-22222Z",
                               reason="typo check here")
    assert not miss.found
    rid = synthetic_identity(5)["resident_id"]
    by_id = code_index.lookup_code(session, ledger, actor=world["cust"], keys=ck, resident_id=rid,
                            reason="patient asked at the desk")
    assert by_id.matches == [(STUDY, s.code)]
    with pytest.raises(InvalidInput) as err:
        code_index.lookup_code(session, ledger, actor=world["cust"], keys=ck, resident_id=rid,
                        reason=f"looking up {rid}")
    assert err.value.field == "reason"
    recs = [(e.actor, e.reason, json.loads(e.changes or "[]")[0]["after"])
            for e in entries(session, "code_index.lookup_identity")
            + entries(session, "code_index.lookup_code")]
    assert recs == [("cust.li", "serious adverse event follow-up", "found"),
                    ("cust.li", "typo check here", "not_found"),
                    ("cust.li", "patient asked at the desk", "found")]
    for e in session.execute(select(LedgerEntry)).scalars():
        assert rid not in f"{e.entity_id}{e.reason}{e.changes}"
    hist = code_index.lookup_history(session, actor=world["cust"])
    assert [h.result for h in hist] == ["found", "not_found", "found"]


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.CUSTODIAN])
def test_every_other_role_is_refused_every_code_index_function(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict, role: Role) -> None:
    s = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"])
    who = actor(session, ledger, f"x.{role.value}", role, study=None)
    calls = [
        lambda: code_index.lookup_identity(session, ledger, actor=who, keys=ck, code=s.code,
                                    reason="curious about it"),
        lambda: code_index.lookup_code(session, ledger, actor=who, keys=ck,
                                       reason="curious about it",
                                resident_id=synthetic_identity(1)["resident_id"]),
        lambda: code_index.lookup_history(session, actor=who),
        lambda: code_index.export_subject(session, ledger, actor=who, keys=ck, code=s.code,
                                   reason="curious about it"),
        lambda: code_index.rotate_code_index(session, ledger, actor=who, keys=ck,
                                      new_key=nacl.utils.random(32)),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()


def test_custodian_scoped_to_another_study_cannot_re_identify(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    s = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"])
    other = actor(session, ledger, "cust.other", Role.CUSTODIAN, study="CI-OTHER")
    with pytest.raises(PermissionDenied):
        code_index.lookup_identity(session, ledger, actor=other, keys=ck, code=s.code,
                            reason="not my study")
    found = code_index.lookup_code(session, ledger, actor=other, keys=ck, reason="not my study",
                            resident_id=synthetic_identity(1)["resident_id"])
    assert not found.found
    code_index.lookup_identity(session, ledger, actor=world["cust"], keys=ck, code=s.code,
                        reason="their study lookup")
    assert [h.reason for h in code_index.lookup_history(session, actor=other)] == ["not my study"]
    assert [h.reason for h in code_index.lookup_history(session, actor=world["cust"])] == [
        "their study lookup", "not my study"]


def test_subject_access_export_is_readable_and_audited(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    s = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=9)
    f = code_index.export_subject(session, ledger, actor=world["cust"], keys=ck, code=s.code,
                           reason="subject's written request", fmt="json")
    doc = json.loads(f.content)
    assert doc["identity"]["name"] == synthetic_identity(9)["name"]
    assert doc["enrolment"]["study"] == STUDY and doc["enrolment"]["site"] == "S01"
    assert [h["action"] for h in doc["history"]] == ["subject.enrol", "consent.record"]
    txt = code_index.export_subject(session, ledger, actor=world["cust"], keys=ck, code=s.code,
                             reason="subject's written request", fmt="text")
    assert txt.filename.endswith(".txt")
    assert f"Name: {synthetic_identity(9)['name']}" in txt.content.decode().splitlines()
    [e1, e2] = entries(session, "subject.export")
    assert (e1.subject, e1.reason) == (s.code, "subject's written request")
    assert synthetic_identity(9)["name"] not in (e1.changes or "")
    with pytest.raises(NotFound):
        code_index.export_subject(session, ledger, actor=world["cust"], keys=ck, code="S01-22222Z",
                           reason="subject's written request")


def test_rotation_re_encrypts_everything_and_keeps_identities(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    made = [enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                          site=world["s1"], n=n) for n in range(1, 5)]
    new = nacl.utils.random(32)
    report = code_index.rotate_code_index(session, ledger, actor=world["cust"], keys=ck,
                                          new_key=new)
    assert (report.entries, report.old_key_ids, report.new_key_id) == (
        4, [ck.current_id], key_id(new))
    only_new = CodeIndexKeys(current=new, blind=ck.blind)
    assert code_index.verify_code_index(session, keys=only_new).by_key == {key_id(new): 4}
    for n, s in enumerate(made, start=1):
        r = code_index.lookup_identity(session, ledger, actor=world["cust"], keys=only_new,
                                       code=s.code,
                                reason="after rotation")
        assert r.identity == validate_identity(**synthetic_identity(n))
    with pytest.raises(CodeIndexKeyError):  # the old key alone no longer opens the index
        code_index.verify_code_index(session, keys=ck)


def test_rotation_interrupted_halfway_changes_nothing(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    for n in range(1, 5):
        enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=n)

    def boom(i: int) -> None:
        if i == 2:
            raise KeyboardInterrupt

    before = {e.code: (e.key_id, e.ciphertext)
              for e in session.execute(select(CodeIndexEntry)).scalars()}
    sp = session.begin_nested()
    with pytest.raises(KeyboardInterrupt):
        code_index.rotate_code_index(session, ledger, actor=world["cust"], keys=ck,
                              new_key=nacl.utils.random(32), on_entry=boom)
    sp.rollback()
    after = {e.code: (e.key_id, e.ciphertext)
             for e in session.execute(select(CodeIndexEntry)).scalars()}
    assert after == before
    assert code_index.verify_code_index(session, keys=ck).by_key == {ck.current_id: 4}


def test_wrong_keys_are_refused_before_anything_is_decrypted_or_written(
        session: Session, ledger: Ledger, ck: CodeIndexKeys, world: dict) -> None:
    s = enrol_subject(session, ledger, ck, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=1)
    wrong = CodeIndexKeys(current=nacl.utils.random(32), blind=ck.blind)
    with pytest.raises(CodeIndexKeyError, match="lacks the code-index key") as err:
        code_index.lookup_identity(session, ledger, actor=world["cust"], keys=wrong, code=s.code,
                            reason="wrong key test")
    assert synthetic_identity(1)["name"] not in err.value.message
    with pytest.raises(CodeIndexKeyError):
        enrol_subject(session, ledger, wrong, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=2)
    wrong_blind = CodeIndexKeys(current=ck.current, blind=nacl.utils.random(32))
    with pytest.raises(CodeIndexKeyError, match="blind_index.key"):
        # with a wrong blind key the duplicate would go unnoticed: refused instead
        enrol_subject(session, ledger, wrong_blind, actor=world["inv"], study=world["study"],
                      site=world["s1"], n=1)
    assert len(session.execute(select(Subject)).all()) == 1
    assert entries(session, "code_index.lookup_identity") == []
