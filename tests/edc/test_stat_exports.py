"""Exports statisticians open without conversion: SPSS, Stata and SAS files (read back with
pyreadstat) keep variable and value labels, the CSV has a UTF-8 byte-order mark (codes or
labels), the R script sets labels and factors; direct identifiers are never written; internal
roles only; every export audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyreadstat
import pytest
from factories import DEMOGRAPHICS, SETUP, VITALS, approved_export, login_as, make_entry_study
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_web_foundation import login

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from studies.entry import service as entry
from studies.entry import stat_export
from studies.entry.schemas import SaveIn
from studies.kernel.errors import NotFound, PermissionDenied
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
SUBJECT = "S01-ENT01"


@pytest.fixture
def entered(session: Session, ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    for form, values in (("demographics", DEMOGRAPHICS),
                         ("vital_signs", {**VITALS, "symptoms": ["1", "3"]})):
        entry.save_form(session, ledger, actor=SETUP, study_code=STUDY, subject_code=SUBJECT,
                        event_name="baseline", form_name=form,
                        data=SaveIn(base_version=0, values=values))
    approved_export(session, STUDY)


def _read(tmp_path: Path, fmt: str, form: str | None = None) -> tuple[Any, Any]:
    data, name = stat_export.export_for_statistics(
        SESSION[0], SESSION[1], actor=SETUP, study_code=STUDY, fmt=fmt, form_name=form)
    path = tmp_path / name
    path.write_bytes(data)
    reader = {"sav": pyreadstat.read_sav, "dta": pyreadstat.read_dta,
              "xpt": pyreadstat.read_xport}[fmt]
    return reader(str(path), output_format="polars")


SESSION: list[Any] = []


@pytest.fixture(autouse=True)
def _session(session: Session, ledger: Ledger) -> Any:
    SESSION[:] = [session, ledger]
    yield
    SESSION.clear()


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_keep_variable_and_value_labels(entered: None, tmp_path: Path,
                                                       fmt: str) -> None:
    df, meta = _read(tmp_path, fmt)
    assert df["record_id"].to_list() == [SUBJECT]
    assert df["weight"].to_list() == [70.0] and df["sex"].to_list() == [1.0]
    assert df["symptoms___1"].to_list() == [1.0] and df["symptoms___2"].to_list() == [0.0]
    labels = meta.column_names_to_labels
    assert labels["weight"] == "体重 / Weight (kg)" and labels["sex"] == "性别 / Sex"
    assert meta.variable_value_labels["sex"] == {1: "男 / Male", 2: "女 / Female"}
    assert meta.variable_value_labels["symptoms___1"] == {0: "Unchecked", 1: "Checked"}
    assert "patient_name" not in df.columns and "phone" not in df.columns


def test_sas_transport_keeps_variable_labels(entered: None, tmp_path: Path) -> None:
    df, meta = _read(tmp_path, "xpt", "vital_signs")
    assert df["sbp"].to_list() == [120.0]
    assert meta.column_names_to_labels["sbp"] == "Systolic blood pressure"
    assert "sex" not in df.columns  # one form


def test_csv_with_a_bom_codes_or_labels_and_the_r_script(session: Session, ledger: Ledger,
                                                         entered: None) -> None:
    raw, name = stat_export.export_for_statistics(session, ledger, actor=SETUP, study_code=STUDY,
                                                  fmt="csv", form_name="demographics")
    assert name == f"{STUDY}-demographics.csv" and raw.startswith(b"\xef\xbb\xbf")
    header, row = raw.decode("utf-8-sig").splitlines()[:2]
    assert header.startswith("record_id,redcap_event_name,redcap_repeat_instance,dob,sex")
    assert "patient_name" not in header
    labelled, _ = stat_export.export_for_statistics(session, ledger, actor=SETUP,
                                                    study_code=STUDY, fmt="csv_labels",
                                                    form_name="demographics")
    assert "男 / Male" in labelled.decode("utf-8-sig")
    script, rname = stat_export.export_for_statistics(session, ledger, actor=SETUP,
                                                      study_code=STUDY, fmt="r",
                                                      form_name="demographics")
    text = script.decode()
    assert rname == f"{STUDY}-demographics.r"
    assert f'read.csv("{STUDY}-demographics.csv"' in text
    assert 'attr(data[["sex"]], "label") <- "性别 / Sex"' in text
    assert ('data[["sex.factor"]] <- factor(data[["sex"]], levels = c(1, 2), '
            'labels = c("男 / Male", "女 / Female"))') in text
    audited = session.execute(select(LedgerEntry).where(
        LedgerEntry.action == "entry.export")).scalars().all()
    assert sum("statistics (" in (e.changes or "") for e in audited) == 3


def test_only_internal_roles_export_and_bad_input_is_refused(session: Session, ledger: Ledger,
                                                             entered: None) -> None:
    inv = login_as(session, ledger, "inv", Role.INVESTIGATOR, study=STUDY)
    sponsor = login_as(session, ledger, "sp", Role.SPONSOR, study=STUDY)
    for actor in (inv, sponsor):
        with pytest.raises(PermissionDenied):
            stat_export.export_for_statistics(session, ledger, actor=actor, study_code=STUDY,
                                              fmt="sav")
    with pytest.raises(NotFound):
        stat_export.export_for_statistics(session, ledger, actor=SETUP, study_code=STUDY,
                                          fmt="sav", form_name="nosuchform")


def test_the_statistics_export_through_the_api(app_client: TestClient, session: Session,
                                               ledger: Ledger, entered: None,
                                               tmp_path: Path) -> None:
    dm = login_as(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
    approved_export(session, STUDY, dm)
    login(app_client, "dm")
    r = app_client.get(f"/api/v1/studies/{STUDY}/export/statistics/dta",
                       params={"form": "demographics"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{STUDY}-demographics.dta"')
    (tmp_path / "x.dta").write_bytes(r.content)
    _, meta = pyreadstat.read_dta(str(tmp_path / "x.dta"), output_format="polars")
    assert meta.column_names_to_labels["dob"] == "出生日期 / Date of birth"
    assert app_client.get(f"/api/v1/studies/{STUDY}/export/statistics/xlsx").status_code == 422
