"""``edc study import-redcap / import-odm / export-odm`` as an operator uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from edc.cli import main
from studies.forms import odm

ROOT = Path(__file__).resolve().parents[2]
DICTIONARY = ROOT / "tests" / "data" / "redcap_dictionary.csv"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path) -> Path:
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(tmp_path / "keys"))
    assert main(["init"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_export_round_trip_from_the_command_line(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out, err = run(capsys, "study", "import-redcap", str(DICTIONARY), "--study", "CLI-1")
    assert code == 0, err
    assert "CLI-1: form vital_signs version 1 (draft, 11 items)" in out
    assert "created as a draft" in out
    assert "warning: line 27: followup_days" in err
    target = env / "cli-1.xml"
    code, _, err = run(capsys, "study", "export-odm", "--study", "CLI-1", "--out", str(target))
    assert code == 0, err
    odm.load_schema().assertValid(etree.parse(str(target)))
    code, out, _ = run(capsys, "study", "export-odm", "--study", "CLI-1")
    assert code == 0 and out.startswith("<?xml version='1.0' encoding='UTF-8'?>")
    code, out, err = run(capsys, "study", "import-odm", str(target), "--study", "CLI-2")
    assert code == 0, err
    assert "CLI-2: form demographics version 1 (draft, 9 items)" in out


def test_a_bad_dictionary_is_one_line_with_the_line_number(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = env / "bad.csv"
    bad.write_text('"Variable / Field Name","Form Name","Field Type","Field Label"\n'
                   "record_id,f,text,ID\nx,f,matrix,X\n", encoding="utf-8")
    capsys.readouterr()
    code, _, err = run(capsys, "study", "import-redcap", str(bad), "--study", "CLI-3")
    assert code == 2
    assert err.count("\n") == 1 and "line 3: x: unknown REDCap field type 'matrix'" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "study", "export-odm", "--study", "CLI-3")
    assert code == 2 and "no study with protocol number 'CLI-3'" in err  # nothing was created


def test_missing_files_and_non_utf8_are_one_line_errors(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, _, err = run(capsys, "study", "import-odm", str(env / "nope.xml"), "--study", "X-1")
    assert code == 2 and err.startswith("edc: cannot read") and err.count("\n") == 1
    latin = env / "latin.csv"
    latin.write_bytes("Variable / Field Name,Form Name,Field Type,Field Label\né".encode("latin-1"))
    code, _, err = run(capsys, "study", "import-redcap", str(latin), "--study", "X-1")
    assert code == 2 and "is not UTF-8" in err
