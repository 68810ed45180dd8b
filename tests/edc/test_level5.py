"""Level-5 data (§6.2 e): only the roles the study counts as treating clinicians see level-5
values; everyone else sees them masked — form page and API, history, CSV, REDCap API and
statistics exports — unless granted, with a reason and for a time; each unmasked view is
audited."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import VITALS, approved_export, make_entry_study, make_user
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc.state import AppState
from studies.accounts.models import User
from studies.entry import level5, odm_export, redcap_api, stat_export
from studies.entry import service as entry
from studies.entry.models import UnmaskGrant
from studies.entry.schemas import SaveIn
from studies.forms.models import Item
from studies.kernel.actor import Actor
from studies.kernel.errors import InvalidInput
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
SUBJECT = "S01-ENT01"
FORM = f"/studies/{STUDY}/entry/{SUBJECT}/baseline/vital_signs"
MASKED = "[5级数据已遮蔽 / level-5 value masked]"


def actor(name: str, role: Role) -> Actor:
    return Actor(user_id=name, username=name, display_name=name, grants=((role, STUDY),))


@pytest.fixture
def study(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    for name, role in (("pi", Role.PRINCIPAL_INVESTIGATOR), ("inv", Role.INVESTIGATOR),
                       ("mon", Role.MONITOR), ("dm", Role.DATA_MANAGER)):
        make_user(session, ledger, name, role, study=STUDY)
    # systolic pressure is classified level 5 for these tests
    session.execute(update(Item).where(Item.name == "sbp").values(level=5))
    entry.save_form(session, ledger, actor=actor("inv", Role.INVESTIGATOR), study_code=STUDY,
                    subject_code=SUBJECT, event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=0, values=VITALS))
    entry.save_form(session, ledger, actor=actor("inv", Role.INVESTIGATOR), study_code=STUDY,
                    subject_code=SUBJECT, event_name="baseline", form_name="vital_signs",
                    data=SaveIn(base_version=1, values={**VITALS, "sbp": "131"},
                                reasons={"sbp": "transcription_error"}))
    session.expire_all()


def test_a_monitor_sees_level_5_values_masked_everywhere(app_client: TestClient,
                                                         session: Session, ledger: Ledger,
                                                         study: None) -> None:
    login(app_client, "mon")
    view = app_client.get("/api/v1" + FORM).json()
    assert view["values"]["sbp"] == MASKED and view["values"]["weight"] == "70.0"
    hist = app_client.get("/api/v1" + FORM + "/items/sbp/history").json()
    assert [(h["before"], h["after"]) for h in hist] == [(None, MASKED), (MASKED, MASKED)]
    timeline = app_client.get("/api/v1" + FORM + "/history").json()
    changes = [c for e in timeline if e["kind"] == "save" for c in e["changes"]
               if c["field"] == "sbp"]
    assert changes and all(c["after"] == MASKED for c in changes)
    page = app_client.get(FORM).text
    assert "131" not in soup(page).find("main").text.replace("2026", "")
    mon = actor("mon", Role.MONITOR)
    rows = redcap_api.export_records(session, ledger, actor=mon, q=redcap_api.RecordQuery())
    assert rows[0]["sbp"] == MASKED and rows[0]["weight"] == "70.0"
    # nor can the rows a filter chooses disclose a masked value
    with pytest.raises(InvalidInput) as refused:
        redcap_api.export_records(session, ledger, actor=mon,
                                  q=redcap_api.RecordQuery(filter_logic="[sbp] > 130"))
    assert refused.value.field == "filterLogic" and "'sbp'" in refused.value.message


def _user(session: Session, username: str) -> User:
    return session.execute(select(User).where(User.username == username)).scalar_one()


def test_a_data_manager_exports_level_5_masked(app_client: TestClient, session: Session,
                                               ledger: Ledger, study: None) -> None:
    approved_export(session, STUDY, _user(session, "dm"))  # §11.3.4.1 c: exports are approved
    login(app_client, "dm")
    csv_text = app_client.get(f"/api/v1/studies/{STUDY}/export/forms/vital_signs.csv").text
    header, row = csv_text.splitlines()[:2]
    assert row.split(",")[header.split(",").index("sbp")] == MASKED
    dm = actor("dm", Role.DATA_MANAGER)
    approved_export(session, STUDY, dm)
    data, _name = stat_export.export_for_statistics(
        session, ledger, actor=dm, study_code=STUDY, fmt="csv",
        form_name="vital_signs")
    lines = data.decode("utf-8-sig").splitlines()
    cols = lines[0].split(",")
    assert lines[1].split(",")[cols.index("sbp")] in ("", '""')  # missing in a statistics file
    assert "131" not in data.decode("utf-8-sig")


def test_the_odm_export_masks_level_5_and_an_export_under_a_grant_says_so(
        session: Session, ledger: Ledger, study: None) -> None:
    dm = actor("dm", Role.DATA_MANAGER)
    approved_export(session, STUDY, dm)
    xml = odm_export.export_clinical_odm(session, ledger, actor=dm, study_code=STUDY).decode()
    assert 'ItemOID="I.vital_signs.sbp"' in xml and MASKED in xml
    assert 'Value="131"' not in xml and 'Value="70.0"' in xml
    pi = actor("pi", Role.PRINCIPAL_INVESTIGATOR)
    level5.grant(session, ledger, actor=pi, study=entry.study_named(session, STUDY),
                 username="dm", reason="data cleaning of SAE", hours=2, max_hours=72,
                 now=dt.datetime.now(dt.UTC))
    dm = Actor(user_id=session.execute(select(User.id).where(User.username == "dm"))
               .scalar_one(), username="dm", display_name="dm",
               grants=((Role.DATA_MANAGER, STUDY),))
    approved_export(session, STUDY, dm)
    xml = odm_export.export_clinical_odm(session, ledger, actor=dm, study_code=STUDY).decode()
    assert 'Value="131"' in xml
    export = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "entry.export").order_by(LedgerEntry.seq.desc())).scalars().first()
    assert export is not None and '"level5_unmasked"' in (export.changes or "")
    assert '["sbp"]' in (export.changes or "")


def test_treating_clinicians_see_level_5_values(app_client: TestClient, study: None) -> None:
    for who in ("inv", "pi"):
        login(app_client, who)
        assert app_client.get("/api/v1" + FORM).json()["values"]["sbp"] == "131"


def test_a_grant_with_a_reason_unmasks_for_a_time_and_each_view_is_audited(
        app_client: TestClient, session: Session, ledger: Ledger, state: AppState,
        study: None) -> None:
    login(app_client, "pi")
    url = f"/api/v1/studies/{STUDY}/unmask-grants"
    r = app_client.post(url, json={"username": "mon", "reason": " ", "hours": 4})
    assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
    r = app_client.post(url, json={"username": "mon", "reason": "x", "hours": 10_000})
    assert r.status_code == 422 and r.json()["error"]["field"] == "hours"
    assert session.execute(select(UnmaskGrant)).first() is None
    r = app_client.post(url, json={"username": "mon", "reason": "SAE source verification",
                                   "hours": 4})
    assert r.status_code == 201, r.text
    granted = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "unmask.grant")).scalar_one()
    assert granted.actor == "pi" and "SAE source verification" in granted.reason

    login(app_client, "mon")
    assert app_client.post(url, json={"username": "mon", "reason": "x",
                                      "hours": 1}).status_code == 403
    assert app_client.get("/api/v1" + FORM).json()["values"]["sbp"] == "131"
    state.reads.flush(session, ledger)
    seen = session.execute(select(LedgerEntry).where(
        LedgerEntry.actor == "mon", LedgerEntry.action.like("read.%"))).scalars().all()
    assert [e.action for e in seen] == ["read.unmasked"]
    assert "level-5 shown: sbp" in seen[0].reason
    # lapsed: masked again
    session.execute(update(UnmaskGrant).values(
        expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    assert app_client.get("/api/v1" + FORM).json()["values"]["sbp"] == MASKED


def test_the_study_names_its_treating_roles(app_client: TestClient, session: Session,
                                            study: None) -> None:
    login(app_client, "pi")
    url = f"/api/v1/studies/{STUDY}/entry/settings"
    r = app_client.put(url, json={"treating_roles": ["principal_investigator"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "treating_roles"
    r = app_client.put(url, json={"treating_roles": ["principal_investigator", "investigator",
                                                     "monitor"]})
    assert r.status_code == 200, r.text
    login(app_client, "mon")
    assert app_client.get("/api/v1" + FORM).json()["values"]["sbp"] == "131"


def test_masking_is_one_rule() -> None:
    seen = level5.Level5(sees=False)
    assert seen.show({"a": 1, "b": None, "c": 2}, {"a", "b"}) == {"a": MASKED, "b": None,
                                                                   "c": 2}
