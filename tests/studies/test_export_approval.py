"""Internal exports need an approval (§11.3.4.1 c, issue 20 item 7): a request by the PI, data
manager or statistician, approved by the PI's signature — or the data security officer's when
it asks for raw quasi-identifiers; nobody approves their own; every export is refused without
an approved request covering its scope, and its ledger entry names the approval used."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from factories import (
    DEMOGRAPHICS,
    LOOSE_AUTH,
    PASSWORD,
    SETUP,
    VITALS,
    login_as,
    make_entry_study,
    make_user,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.accounts import service as accounts
from studies.accounts.models import Signature
from studies.entry import export_approval, odm_export, stat_export
from studies.entry import service as entry
from studies.entry.schemas import SaveIn
from studies.kernel.actor import Actor
from studies.kernel.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SignatureRefused,
)
from studies.kernel.roles import Role
from studies.registry import service as registry

STUDY = "ENT-2026-01"
SUBJECT = "S01-ENT01"


@pytest.fixture
def team(session: Session, ledger: Ledger) -> dict[str, Actor]:
    make_entry_study(session, ledger)
    for form, values in (("demographics", DEMOGRAPHICS), ("vital_signs", VITALS)):
        entry.save_form(session, ledger, actor=SETUP, study_code=STUDY, subject_code=SUBJECT,
                        event_name="baseline", form_name=form,
                        data=SaveIn(base_version=0, values=values))
    make_user(session, ledger, "dso", Role.SECURITY_OFFICER)
    _, dso = accounts.login(session, ledger, username="dso", password=PASSWORD,
                            client="10.0.0.7", config=LOOSE_AUTH)
    return {"stat": login_as(session, ledger, "stat", Role.STATISTICIAN, study=STUDY),
            "pi": login_as(session, ledger, "pi", Role.PRINCIPAL_INVESTIGATOR, study=STUDY),
            "dm": login_as(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY),
            "dso": dso}


def _decide(session: Session, ledger: Ledger, actor: Actor, request_id: str, *,
            approve: bool = True, note: str = "", password: str = PASSWORD) -> Any:
    return export_approval.decide(session, ledger, actor=actor, request_id=request_id,
                                  approve=approve, note=note, username=actor.username,
                                  password=password, totp=None, config=LOOSE_AUTH)


def _sav(session: Session, ledger: Ledger, actor: Actor, tmp_path: Path) -> Any:
    data, name = stat_export.export_for_statistics(session, ledger, actor=actor,
                                                   study_code=STUDY, fmt="sav")
    (tmp_path / name).write_bytes(data)
    return pyreadstat.read_sav(str(tmp_path / name), output_format="polars")


def test_an_export_is_refused_until_the_pi_signs_its_approval(
        session: Session, ledger: Ledger, team: dict[str, Actor], tmp_path: Path) -> None:
    stat, pi = team["stat"], team["pi"]
    with pytest.raises(PermissionDenied) as refused:
        _sav(session, ledger, stat, tmp_path)
    assert refused.value.clause == "§11.3.4.1 c"
    assert "approved export request" in refused.value.message
    req = export_approval.request_export(session, ledger, actor=stat, study_code=STUDY,
                                         form_names=None, raw_quasi_identifiers=False,
                                         purpose="interim analysis", valid_days=14)
    with pytest.raises(PermissionDenied):  # still pending
        _sav(session, ledger, stat, tmp_path)
    with pytest.raises(SignatureRefused):  # a wrong password decides nothing
        _decide(session, ledger, pi, req.id, password="not my password")
    assert req.status == "pending"
    _decide(session, ledger, pi, req.id)
    assert (req.status, req.decided_by, req.decided_role) == (
        "approved", "pi", "principal_investigator")
    assert req.expires_at is not None and req.decided_at is not None
    assert req.expires_at - req.decided_at == dt.timedelta(days=14)
    sig = session.get(Signature, req.signature_id)
    assert sig is not None and sig.username == "pi" and sig.meaning.startswith("批准数据导出")
    assert sig.content_hash == export_approval.content_hash(
        registry.get_study(session, STUDY), req)

    df, meta = _sav(session, ledger, stat, tmp_path)
    assert df["weight"].to_list() == [70.0]
    assert meta.column_names_to_labels["weight"] == "体重 / Weight (kg)"
    # no raw quasi-identifiers were approved: left out
    assert not {"dob", "sex", "visit_date", "patient_name"} & set(df.columns)
    export = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "entry.export").order_by(LedgerEntry.seq.desc())).scalars().first()
    assert export is not None and export.actor == "stat"
    changes = {c["field"]: c["after"] for c in json.loads(export.changes or "[]")}
    assert changes["approval"] == req.id and changes["approved_by"] == "pi"
    assert changes["quasi_identifiers"] == "left out"
    actions = session.execute(select(LedgerEntry.action).where(
        LedgerEntry.entity_id == req.id)).scalars().all()
    assert "export.request" in actions and "export.decide" in actions


def test_raw_quasi_identifiers_need_the_data_security_officers_signature(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    dm, pi, dso = team["dm"], team["pi"], team["dso"]
    req = export_approval.request_export(session, ledger, actor=dm, study_code=STUDY,
                                         form_names=["demographics"],
                                         raw_quasi_identifiers=True, purpose="age check")
    with pytest.raises(PermissionDenied) as refused:
        _decide(session, ledger, pi, req.id)
    assert "Data security officer" in refused.value.message
    assert refused.value.clause == "§11.3.4.1 c"
    assert [v.row.id for v in export_approval.waiting_for(session, actor=dso)] == [req.id]
    assert export_approval.waiting_for(session, actor=pi) == []
    _decide(session, ledger, dso, req.id)
    assert req.decided_role == "security_officer"
    text = odm_export.export_form_csv(session, ledger, actor=dm, study_code=STUDY,
                                      form_name="demographics")
    header, row = text.splitlines()[:2]
    assert "dob" in header.split(",") and "1980-05-01" in row
    assert "patient_name" not in header  # direct identifiers never, whatever the approval
    with pytest.raises(PermissionDenied):  # the scope is one form, not the whole study
        odm_export.export_clinical_odm(session, ledger, actor=dm, study_code=STUDY)
    with pytest.raises(PermissionDenied):
        odm_export.export_form_csv(session, ledger, actor=dm, study_code=STUDY,
                                   form_name="vital_signs")
    with pytest.raises(PermissionDenied):  # an approval is the requester's own
        odm_export.export_form_csv(session, ledger, actor=team["stat"], study_code=STUDY,
                                   form_name="demographics")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    with pytest.raises(PermissionDenied):  # expired
        export_approval.covering(session, actor=dm, study=registry.get_study(session, STUDY),
                                 form_names=["demographics"], now=later)


def test_nobody_approves_their_own_and_a_rejection_needs_a_reason(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    pi, dso, stat = team["pi"], team["dso"], team["stat"]
    req = export_approval.request_export(session, ledger, actor=pi, study_code=STUDY,
                                         form_names=None, raw_quasi_identifiers=False,
                                         purpose="DSMB tables")
    with pytest.raises(PermissionDenied) as own:
        _decide(session, ledger, pi, req.id)
    assert "own request" in own.value.message
    with pytest.raises(PermissionDenied):  # the statistician approves nothing
        _decide(session, ledger, stat, req.id)
    with pytest.raises(InvalidInput) as no_note:
        _decide(session, ledger, dso, req.id, approve=False)
    assert no_note.value.field == "note"
    _decide(session, ledger, dso, req.id, approve=False, note="use the extract workflow")
    assert req.status == "rejected" and req.expires_at is None
    with pytest.raises(Conflict):
        _decide(session, ledger, dso, req.id)
    with pytest.raises(PermissionDenied):
        odm_export.export_clinical_odm(session, ledger, actor=pi, study_code=STUDY)


def test_a_request_names_its_purpose_valid_days_and_real_forms(
        session: Session, ledger: Ledger, team: dict[str, Actor]) -> None:
    stat = team["stat"]

    def ask(**kw: Any) -> Any:
        args: dict[str, Any] = dict(form_names=None, raw_quasi_identifiers=False,
                                    purpose="analysis", valid_days=30)
        return export_approval.request_export(session, ledger, actor=stat, study_code=STUDY,
                                              **{**args, **kw})

    with pytest.raises(InvalidInput) as e:
        ask(purpose="  ")
    assert e.value.field == "purpose"
    with pytest.raises(InvalidInput) as e:
        ask(valid_days=91)
    assert e.value.field == "valid_days"
    with pytest.raises(NotFound):
        ask(form_names=["nosuchform"])
    inv = login_as(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    with pytest.raises(PermissionDenied):  # investigators do not export
        export_approval.request_export(session, ledger, actor=inv, study_code=STUDY,
                                       form_names=None, raw_quasi_identifiers=False,
                                       purpose="x")
    assert ask(form_names=["vital_signs", "demographics"]).forms == ["demographics",
                                                                     "vital_signs"]
