"""``edc entry``: bulk import with progress lines (all rows or none), exports, and the proof
that the current-values table equals the versions and the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import SETUP, approved_export, make_entry_study, make_user
from sqlalchemy import func, select

from audit_trail.service import Ledger
from edc import keyring
from edc.cli import main
from edc.db import make_engine, session_factory
from studies.accounts import service as accounts
from studies.entry.models import ValueVersion
from studies.kernel.roles import Role

STUDY = "ENT-2026-01"
CSV = ("record_id,redcap_event_name,redcap_repeat_instance,visit_date,height,weight,sbp,smoker\n"
       "S01-ENT01,baseline_arm_1,,2026-05-01,175,70,120,0\n"
       + "".join(f"S01-ENT01,followup_arm_1,{n},2026-05-01,175,70,{100 + n % 100},0\n"
                 for n in range(1, 600)))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path) -> str:
    keys = tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    assert main(["init"]) == 0
    engine = make_engine(fresh_url)
    ledger = Ledger(signer=keyring.load(keys).signer)
    with session_factory(engine)() as session, session.begin():
        make_entry_study(session, ledger)
        make_user(session, ledger, "dm", Role.DATA_MANAGER, study=STUDY)
    engine.dispose()
    assert SETUP
    return fresh_url


def values(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(ValueVersion)).scalar_one()
    engine.dispose()
    return int(n)


def test_import_streams_with_progress_and_exports_and_verifies(
        env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("2026-05-01,175,70,105", "2026-05-01,abc,70,105"))
    assert main(["entry", "import-csv", str(bad), "--study", STUDY, "--by", "dm"]) == 2
    _, err = capsys.readouterr()
    assert 'row 7, column 5 (height): must be a number' in err
    assert "nothing was written" in err and values(env) == 0
    good = tmp_path / "good.csv"
    good.write_text(CSV)
    assert main(["entry", "import-csv", str(good), "--study", STUDY, "--by", "dm"]) == 0
    out, err = capsys.readouterr()
    assert "edc: 500 rows read" in err and "edc: 600 rows read" in err
    assert "600 rows, 600 form records" in out
    assert main(["entry", "verify", "--study", STUDY]) == 0
    assert "match" in capsys.readouterr().out
    odm = tmp_path / "x.xml"
    assert main(["entry", "export-odm", "--study", STUDY, "--by", "dm", "--subject",
                 "S01-ENT01", "--out", str(odm)]) != 0  # no approved export request yet
    assert "§11.3.4.1 c" in capsys.readouterr().err and not odm.exists()
    engine = make_engine(env)
    with session_factory(engine)() as session, session.begin():
        approved_export(session, STUDY, accounts.find_user(session, "dm"))
    engine.dispose()
    assert main(["entry", "export-odm", "--study", STUDY, "--by", "dm", "--subject",
                 "S01-ENT01", "--out", str(odm)]) == 0
    assert b"<ClinicalData" in odm.read_bytes()
    assert main(["entry", "export-csv", "--study", STUDY, "--by", "dm", "--form",
                 "vital_signs", "--out", str(tmp_path / "v.csv")]) == 0
    assert len((tmp_path / "v.csv").read_text().splitlines()) == 601
    assert main(["entry", "import-csv", str(tmp_path / "missing.csv"), "--study", STUDY,
                 "--by", "dm"]) == 2
    assert main(["audit", "verify"]) == 0
