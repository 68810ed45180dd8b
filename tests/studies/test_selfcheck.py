"""The Appendix F self-check (studies/oversight/selfcheck.py): each item the software can
evidence passes, fails or is not applicable on the data as it is, with the evidence named; only
the data security officer and the auditor run it, and each run is a ledger entry."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import enrol_totp, make_study, make_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from studies.accounts import organisations as orgs
from studies.accounts import service as accounts
from studies.accounts.service import DEFAULT_CONFIG
from studies.extracts.models import ExtractDecision, ExtractRequest
from studies.kernel.actor import SYSTEM
from studies.kernel.errors import PermissionDenied
from studies.kernel.events import Action
from studies.kernel.roles import Role
from studies.oversight import selfcheck
from studies.oversight.selfcheck import Result
from studies.retention.models import StudyEnd

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()


def items(session: Session, ledger: Ledger, keys: keyring.Keyring, username: str,
          now: dt.datetime = NOW) -> dict[str, selfcheck.Item]:
    actor = accounts.actor_for(session, accounts.find_user(session, username), client="test")
    rep = selfcheck.run(session, ledger, actor=actor, vkey=keys.signer.vkey, now=now)
    return {i.key: i for i in rep.items}


def extract(session: Session, study_id: str, code: str, *, org_id: str | None = None,
            built: bool = True, persons: int | None = None) -> ExtractRequest:
    r = ExtractRequest(study_id=study_id, study_code=code, requested_by="sp",
                       requested_by_id="x", purpose="p", fields=["age"], tier="LDS",
                       recipient_org="Far Away Pharma", recipient_org_id=org_id,
                       recipient_key="age1x", use_from=TODAY - dt.timedelta(days=400),
                       use_until=TODAY - dt.timedelta(days=200), status="delivered",
                       cross_border=persons is not None, persons=persons,
                       built_at=NOW - dt.timedelta(days=390) if built else None)
    session.add(r)
    session.flush()
    return r


def test_each_item_passes_or_fails_on_its_evidence(
        session: Session, ledger: Ledger, keys: keyring.Keyring) -> None:
    dso = make_user(session, ledger, "dso", Role.SECURITY_OFFICER)
    make_user(session, ledger, "aud", Role.AUDITOR)
    got = items(session, ledger, keys, "dso")
    # Nothing recorded yet: no checkpoint, no drill, a privileged account without a second
    # factor; nothing delivered, nobody abroad, no study ended.
    assert got["ledger"].result is Result.FAIL
    assert "ledger intact" in got["ledger"].evidence[0]
    assert got["drill"].result is Result.FAIL and "edc backup drill" in got["drill"].evidence[0]
    assert got["second_factor"].result is Result.FAIL
    assert "without: dso" in got["second_factor"].evidence
    assert got["ended_accounts"].result is Result.PASS
    assert {k: got[k].result for k in ("destruction", "cross_border", "extracts")} == {
        "destruction": Result.NA, "cross_border": Result.NA, "extracts": Result.NA}
    assert got["retention"].result is Result.PASS

    # The evidence changes and so does each verdict.
    ledger.checkpoint(session, reason="test")
    ledger.append(session, actor="system", action=Action.BACKUP_DRILL, entity_type="backup",
                  entity_id="b1", reason="restored 12 tables, verified")
    enrol_totp(session, dso, DEFAULT_CONFIG)
    enrol_totp(session, accounts.find_user(session, "aud"), DEFAULT_CONFIG)
    gone = make_user(session, ledger, "left", Role.INVESTIGATOR)
    gone.end_date = TODAY - dt.timedelta(days=3)
    study = make_study(session, ledger, "OLD-2015")
    session.add(StudyEnd(study_id=study.id, ended_on=TODAY.replace(year=TODAY.year - 6),
                         recorded_by="dm"))
    far = orgs.register_organisation(session, ledger, actor=SYSTEM, code="FAR",
                                     name_zh="远方药企", name_en="Far Away Pharma",
                                     kind=orgs.OrgKind.COMPANY, country="US")
    req = extract(session, study.id, "OLD-2015", org_id=far.id, persons=260)
    session.flush()
    got = items(session, ledger, keys, "aud")
    assert got["ledger"].result is Result.PASS
    assert any(e.startswith("latest signed checkpoint: size") for e in got["ledger"].evidence)
    assert got["drill"].result is Result.PASS
    assert "restored 12 tables, verified" in got["drill"].evidence[0]
    assert got["second_factor"].result is Result.PASS
    assert got["ended_accounts"].result is Result.FAIL
    assert f"left: ended {(TODAY - dt.timedelta(days=3)).isoformat()}" in \
        got["ended_accounts"].evidence
    assert got["destruction"].result is Result.FAIL
    assert any("overdue: OLD-2015 LDS to Far Away Pharma" in e
               for e in got["destruction"].evidence)
    assert got["cross_border"].result is Result.FAIL
    assert "Far Away Pharma" in got["cross_border"].evidence[0]
    assert "260 records about persons, limit 250" in got["cross_border"].evidence[0]
    assert got["retention"].result is Result.FAIL
    assert any(e.startswith("OLD-2015: review due") for e in got["retention"].evidence)
    assert got["extracts"].result is Result.FAIL
    assert any(e.startswith("built without an approval: OLD-2015 LDS")
               for e in got["extracts"].evidence)

    # A drill over a year old fails again; an approval, a certificate, a deactivation pass.
    later = items(session, ledger, keys, "aud", now=NOW + dt.timedelta(days=400))
    assert later["drill"].result is Result.FAIL
    assert 'over a year ago' in later["drill"].evidence
    session.add(ExtractDecision(request_id=req.id, kind="officer", approve=True,
                                username="dso", user_id=dso.id))
    req.destruction_at, req.persons = NOW, 200
    gone.is_active = False
    session.flush()
    got = items(session, ledger, keys, "dso")
    assert {k: got[k].result for k in ("extracts", "destruction", "cross_border",
                                        "ended_accounts")} == {
        "extracts": Result.PASS, "destruction": Result.PASS, "cross_border": Result.PASS,
        "ended_accounts": Result.PASS}
    assert "LDS: 1 delivered" in got["extracts"].evidence


def test_only_the_officer_and_the_auditor_run_it_and_each_run_is_audited(
        session: Session, ledger: Ledger, keys: keyring.Keyring) -> None:
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)
    make_user(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR)
    with pytest.raises(PermissionDenied):
        items(session, ledger, keys, "pi")
    items(session, ledger, keys, "dso")
    runs = session.execute(select(LedgerEntry.actor, LedgerEntry.reason).where(
        LedgerEntry.action == Action.OVERSIGHT_SELFCHECK)).all()
    assert len(runs) == 1 and runs[0].actor == "dso"
    assert runs[0].reason.startswith("Appendix F self-check: ")
