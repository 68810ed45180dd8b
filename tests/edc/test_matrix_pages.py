"""A REDCap matrix group is rendered on the eCRF page as REDCap shows it (issue 19 item 5): one
table whose columns are the shared choices and whose rows are the group's items, a radio in
each cell; it saves like any field, and a read-only view marks the chosen cell."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import ENTRY_DICTIONARY, SETUP, make_entry_study, make_user
from fastapi.testclient import TestClient
from pages_util import login, soup
from sqlalchemy.orm import Session
from test_study_pages import csrf

from audit_trail.service import Ledger
from studies.forms import service as forms
from studies.forms.schemas import EventIn
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
PAGE = f"/studies/{STUDY}/entry/S01-ENT01/qol_visit/qol"
HEADER = ENTRY_DICTIONARY.read_text(encoding="utf-8").splitlines()[0]
CHOICES = '"1, 无困难 / None | 2, 有困难 / Some | 3, 不能 / Unable"'
QOL = "\n".join([
    HEADER,
    "record_id,qol,,text,Record ID,,,,,,,,,,,,,",
    f'mobility,qol,"生活质量 / Quality of life",radio,"行动能力 / Mobility",{CHOICES},,,,,,,,,,'
    "qol_matrix,,",
    f'selfcare,qol,,radio,"自我照顾 / Self-care",{CHOICES},,,,,,,,,,qol_matrix,,',
    'qol_note,qol,,notes,"备注 / Note",,,,,,,,,,,,,', ""])


@pytest.fixture
def study(session: Session, ledger: Ledger, tmp_path: Path) -> None:
    make_entry_study(session, ledger)
    forms.import_redcap(session, ledger, actor=SETUP, study_code=STUDY, text=QOL)
    forms.define_event(session, ledger, actor=SETUP, study_code=STUDY, data=EventIn(
        name="qol_visit", label_zh="生活质量访视", label_en="QoL visit", form_names=["qol"]))
    make_user(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    make_user(session, ledger, "mon", Role.MONITOR, study=STUDY)


def test_a_matrix_group_is_one_table_with_the_choices_as_columns(
        app_client: TestClient, study: None) -> None:
    login(app_client, "inv")
    page = soup(app_client.get(PAGE).text)
    table = page.select_one("table.matrix#matrix-qol_matrix")
    assert table is not None
    assert [th.text for th in table.select("thead th")][1:] == [
        'None', 'Some', 'Unable']
    rows = table.select("tbody tr")
    assert [r.th.text.strip(" *") for r in rows] == ['Mobility', 'Self-care']
    for r, name in zip(rows, ("mobility", "selfcare"), strict=True):
        radios = r.select("input[type=radio]")
        assert [(i["name"], i["value"]) for i in radios] == [(name, c) for c in "123"]
    assert page.find("textarea", {"name": "qol_note"}) is not None  # not in the matrix

    r = app_client.post(PAGE, data={"csrf_token": csrf(app_client, PAGE), "base_version": "0",
                                    "mobility": "2", "selfcare": "1"})
    assert r.status_code == 200, r.text
    again = soup(app_client.get(PAGE).text).select_one("table.matrix")
    checked = {(i["name"], i["value"]) for i in again.select("input[checked]")}
    assert checked == {("mobility", "2"), ("selfcare", "1")}

    login(app_client, "mon")  # read-only: the chosen cell is marked
    shown = soup(app_client.get(PAGE).text).select_one("table.matrix")
    cells = [[td.text for td in tr.select("td.matrix-cell")] for tr in shown.select("tbody tr")]
    assert cells == [["", "●", ""], ["●", "", ""]]
    assert shown.select("input") == []
