"""Randomisation and blinding (SPEC §6): permuted blocks stratified by site and form data from a
key-directory seed, or an imported list; every assignment in the ledger; a blinded allocation
sealed until a locked study is unblinded by PI and statistician; emergency unblinding."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from factories import (
    DEMOGRAPHICS,
    LOOSE_AUTH,
    PASSWORD,
    login_as,
    make_entry_study,
    make_lock_team,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerCheckpoint, LedgerEntry
from audit_trail.service import Ledger
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.actor import Actor
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    Locked,
    NotAuthenticated,
    PermissionDenied,
    RuleViolation,
)
from studies.kernel.roles import Role
from studies.locks import schemas as lock_schemas
from studies.locks import service as locks
from studies.randomisation import service as rnd
from studies.randomisation.models import Allocation
from studies.randomisation.schemas import SchemeIn
from studies.signoff import service as sign_off
from studies.signoff.models import InboxMessage

STUDY = "ENT-2026-01"
KEYS = rnd.keys_from(b"k" * 32)
SUBJECTS = tuple(f"S01-R{n:04d}" for n in range(12))


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Actor]:
    made = make_entry_study(session, ledger, subjects=SUBJECTS)
    t = make_lock_team(session, ledger, STUDY)
    t["study"] = made["study"]  # type: ignore[assignment]
    return t


def configure(session: Session, ledger: Ledger, t: dict[str, Any], **kw: Any) -> None:
    kw.setdefault("method", "blocks")
    kw.setdefault("arms", ["A", "B"])
    kw.setdefault("block_sizes", [2, 4])
    rnd.configure(session, ledger, actor=t["stat"], study_code=STUDY, data=SchemeIn(**kw))


def randomise(session: Session, ledger: Ledger, actor: Actor,
              code: str) -> rnd.AllocationView:
    return rnd.randomise(session, ledger, actor=actor, keys=KEYS, study_code=STUDY,
                         subject_code=code)


def test_permuted_blocks_are_balanced_reproducible_and_each_assignment_is_in_the_ledger(
        session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    configure(session, ledger, team)
    arms = [randomise(session, ledger, team["inv"], c).arm for c in SUBJECTS]
    scheme = rnd._scheme(session, team["study"])
    assert arms == [rnd.arm_at(KEYS, scheme, "S01", n) for n in range(1, 13)]
    # the sequence is a series of complete blocks: balanced at every block boundary
    bounds, i, b = [], 0, 0
    while i < len(arms):
        i += len(rnd.block(KEYS, scheme, "S01", b))
        b += 1
        bounds.append(i)
    for end in bounds:
        if end <= len(arms):
            c = Counter(arms[:end])
            assert c["A"] == c["B"]
    assert {len(rnd.block(KEYS, scheme, "S01", n)) for n in range(20)} == {2, 4}
    other = rnd.keys_from(b"o" * 32)
    assert [rnd.arm_at(other, scheme, "S01", n) for n in range(1, 41)] != \
        [rnd.arm_at(KEYS, scheme, "S01", n) for n in range(1, 41)]
    entries = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "randomisation.assign")).scalars().all()
    assert len(entries) == 12 and '"arm"' in (entries[0].changes or "")
    with pytest.raises(Conflict):
        randomise(session, ledger, team["inv"], SUBJECTS[0])
    with pytest.raises(Conflict):  # the scheme is fixed once anyone is randomised
        configure(session, ledger, team)


def test_strata_are_site_plus_factors_from_form_data(session: Session, ledger: Ledger,
                                                     team: dict[str, Any]) -> None:
    configure(session, ledger, team, factors=[{"form": "demographics", "item": "sex"}])
    with pytest.raises(InvalidInput) as e:
        randomise(session, ledger, team["inv"], SUBJECTS[0])
    assert "demographics.sex" in e.value.message
    for n, code in enumerate(SUBJECTS[:4]):
        entry.save_form(session, ledger, actor=team["inv"], study_code=STUDY, subject_code=code,
                        event_name="baseline", form_name="demographics",
                        data=SaveIn(base_version=0,
                                          values={**DEMOGRAPHICS, "sex": str(n % 2 + 1),
                                                  **({"pregnant": "0"} if n % 2 else {})}))
    got = [randomise(session, ledger, team["inv"], c) for c in SUBJECTS[:4]]
    assert [(g.stratum, g.seq) for g in got] == [
        ("S01|sex=1", 1), ("S01|sex=2", 1), ("S01|sex=1", 2), ("S01|sex=2", 2)]


def test_scheme_input_is_checked_and_only_the_statistician_sets_it(
        session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as e:
        configure(session, ledger, team, block_sizes=[3])
    assert e.value.field == "block_sizes"
    with pytest.raises(InvalidInput):
        configure(session, ledger, team, arms=["A", "A"])
    with pytest.raises(InvalidInput):
        configure(session, ledger, team, factors=[{"form": "nope", "item": "sex"}])
    with pytest.raises(PermissionDenied):
        rnd.configure(session, ledger, actor=team["inv"], study_code=STUDY,
                      data=SchemeIn(method="blocks", arms=["A", "B"], block_sizes=[2]))
    with pytest.raises(RuleViolation):  # no scheme yet
        randomise(session, ledger, team["inv"], SUBJECTS[0])
    configure(session, ledger, team)
    with pytest.raises(PermissionDenied):
        randomise(session, ledger, team["stat"], SUBJECTS[0])


def test_an_imported_list_is_used_in_order_checked_and_can_run_out(
        session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    configure(session, ledger, team, method="list")
    imp = dict(actor=team["stat"], keys=KEYS, study_code=STUDY)
    for bad in ("stratum,seq,arm\nS01,1,C\n", "stratum,seq\nS01,1\n",
                "stratum,seq,arm\nS01,x,A\n", "stratum,seq,arm\nS01,1,A\nS01,1,B\n"):
        with pytest.raises(InvalidInput) as e:
            rnd.import_list(session, ledger, text=bad, **imp)  # type: ignore[arg-type]
        assert e.value.field == "file"
    assert rnd.import_list(session, ledger, text="stratum,seq,arm\nS01,1,B\nS01,2,A\n",
                           **imp) == 2  # type: ignore[arg-type]
    assert [randomise(session, ledger, team["inv"], c).arm for c in SUBJECTS[:2]] == ["B", "A"]
    with pytest.raises(RuleViolation):
        randomise(session, ledger, team["inv"], SUBJECTS[2])
    e2 = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "randomisation.list_import")).scalar_one()
    assert '"B"' not in (e2.changes or "")


def test_randomising_a_locked_subject_is_refused(session: Session, ledger: Ledger,
                                                 team: dict[str, Any]) -> None:
    configure(session, ledger, team)
    locks.set_locks(session, ledger, actor=team["dm"], study_code=STUDY,
                    data=lock_schemas.LockIn(scope="subjects", subjects=[SUBJECTS[0]]))
    with pytest.raises(Locked):
        randomise(session, ledger, team["inv"], SUBJECTS[0])
    randomise(session, ledger, team["inv"], SUBJECTS[1])


def _blinded(session: Session, ledger: Ledger, t: dict[str, Any]) -> None:
    t["study"].blinded = True
    session.flush()
    configure(session, ledger, t)


def test_a_blinded_allocation_is_sealed_from_every_role_and_the_ledger(
        session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    _blinded(session, ledger, team)
    got = randomise(session, ledger, team["inv"], SUBJECTS[0])
    assert got.arm == rnd.SEALED
    for who in ("pi", "dm", "stat", "inv"):
        views = rnd.allocations(session, actor=team[who], keys=KEYS, study_code=STUDY)
        assert [v.arm for v in views] == [rnd.SEALED]
    e = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "randomisation.assign")).scalar_one()
    assert "arm_commitment" in (e.changes or "") and '"arm"' not in (e.changes or "")
    a = session.execute(select(Allocation)).scalar_one()
    assert "A" not in a.arm_sealed.split() and a.arm_sealed not in ("A", "B")


def test_unblinding_needs_a_locked_study_and_pi_and_statistician_signatures(
        session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    _blinded(session, ledger, team)
    randomise(session, ledger, team["inv"], SUBJECTS[0])
    with pytest.raises(RuleViolation):  # not locked
        rnd.request_unblinding(session, ledger, actor=team["pi"], study_code=STUDY,
                               reason="final analysis")
    locks.set_locks(session, ledger, actor=team["dm"], study_code=STUDY,
                    data=lock_schemas.LockIn(scope="study", override_reason="test"))
    u = rnd.request_unblinding(session, ledger, actor=team["stat"], study_code=STUDY,
                               reason="final analysis")
    kw: dict[str, Any] = dict(study_code=STUDY, unblinding_id=u.id, password=PASSWORD,
                              config=LOOSE_AUTH)
    with pytest.raises(PermissionDenied):  # the data manager does not sign an unblinding
        rnd.sign_unblinding(session, ledger, actor=team["dm"], role=Role.DATA_MANAGER,
                            username="dm", **kw)
    with pytest.raises(PermissionDenied) as e:  # statistician signing as PI
        rnd.sign_unblinding(session, ledger, actor=team["stat"],
                            role=Role.PRINCIPAL_INVESTIGATOR, username="stat", **kw)
    assert e.value.audit["outcome"] == "denied"
    with pytest.raises(NotAuthenticated):
        rnd.sign_unblinding(session, ledger, actor=team["pi"], role=Role.PRINCIPAL_INVESTIGATOR,
                            username="pi", **{**kw, "password": "wrong"})
    rnd.sign_unblinding(session, ledger, actor=team["pi"], role=Role.PRINCIPAL_INVESTIGATOR,
                        username="pi", **kw)
    assert rnd.allocations(session, actor=team["pi"], keys=KEYS,
                           study_code=STUDY)[0].arm == rnd.SEALED
    rnd.sign_unblinding(session, ledger, actor=team["stat"], role=Role.STATISTICIAN,
                        username="stat", **kw)
    assert u.status == "effective"
    assert rnd.allocations(session, actor=team["pi"], keys=KEYS,
                           study_code=STUDY)[0].arm in ("A", "B")
    assert rnd.allocations(session, actor=team["mon"], keys=KEYS,
                           study_code=STUDY)[0].arm == rnd.SEALED  # no allocation.read


def test_one_person_cannot_sign_an_unblinding_twice(session: Session, ledger: Ledger,
                                                   team: dict[str, Any]) -> None:
    _blinded(session, ledger, team)
    locks.set_locks(session, ledger, actor=team["dm"], study_code=STUDY,
                    data=lock_schemas.LockIn(scope="study", override_reason="test"))
    both = login_as(session, ledger, "both", Role.PRINCIPAL_INVESTIGATOR, Role.STATISTICIAN,
                    study=STUDY)
    u = rnd.request_unblinding(session, ledger, actor=both, study_code=STUDY, reason="final")
    kw: dict[str, Any] = dict(study_code=STUDY, unblinding_id=u.id, username="both",
                              password=PASSWORD, config=LOOSE_AUTH)
    rnd.sign_unblinding(session, ledger, actor=both, role=Role.PRINCIPAL_INVESTIGATOR, **kw)
    with pytest.raises(PermissionDenied):
        rnd.sign_unblinding(session, ledger, actor=both, role=Role.STATISTICIAN, **kw)
    assert u.status == "pending"


def test_emergency_unblinding_by_the_pi_is_signed_loudly_audited_and_tells_the_data_manager(
        session: Session, ledger: Ledger, team: dict[str, Any]) -> None:
    _blinded(session, ledger, team)
    randomise(session, ledger, team["inv"], SUBJECTS[0])
    randomise(session, ledger, team["inv"], SUBJECTS[1])
    kw: dict[str, Any] = dict(keys=KEYS, study_code=STUDY, subject_code=SUBJECTS[0],
                              password=PASSWORD, config=LOOSE_AUTH)
    with pytest.raises(PermissionDenied):
        rnd.emergency_unblind(session, ledger, actor=team["inv"], username="inv",
                              reason="anaphylaxis", **kw)
    with pytest.raises(InvalidInput):
        rnd.emergency_unblind(session, ledger, actor=team["pi"], username="pi", reason=" ",
                              **kw)
    with pytest.raises(NotAuthenticated):
        rnd.emergency_unblind(session, ledger, actor=team["pi"], username="pi",
                              reason="anaphylaxis", **{**kw, "password": "wrong"})
    got = rnd.emergency_unblind(session, ledger, actor=team["pi"], username="pi",
                                reason="anaphylaxis, treating physician needs the arm", **kw)
    assert got.arm in ("A", "B")
    e = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "unblinding.emergency")).scalar_one()
    assert e.reason.startswith("紧急揭盲：") and "EMERGENCY UNBLINDING: " in e.reason
    assert e.subject == SUBJECTS[0]
    assert session.get(LedgerCheckpoint, e.seq) is not None
    msg = session.execute(select(InboxMessage).where(
        InboxMessage.kind == "unblinding.emergency")).scalar_one()
    assert msg.audience_role == "data_manager"
    assert [m.kind for m in sign_off.inbox_for(session, actor=team["dm"])][0] == \
        "unblinding.emergency"
    assert "unblinding.emergency" not in [m.kind for m in sign_off.inbox_for(session,
                                                                        actor=team["inv"])]
    views = {v.subject: v.arm for v in rnd.allocations(session, actor=team["pi"], keys=KEYS,
                                                       study_code=STUDY)}
    assert views[SUBJECTS[0]] in ("A", "B") and views[SUBJECTS[1]] == rnd.SEALED
    assert rnd.allocations(session, actor=team["inv"], keys=KEYS,
                           study_code=STUDY)[0].arm == rnd.SEALED


def test_open_label_allocation_is_visible_to_the_care_team(session: Session, ledger: Ledger,
                                                          team: dict[str, Any]) -> None:
    configure(session, ledger, team)
    got = randomise(session, ledger, team["inv"], SUBJECTS[0])
    assert got.arm in ("A", "B")
    with pytest.raises(RuleViolation):  # there is nothing to unblind
        rnd.request_unblinding(session, ledger, actor=team["pi"], study_code=STUDY,
                               reason="x")
    assert dt.datetime.now(dt.UTC) >= got.randomised_at
