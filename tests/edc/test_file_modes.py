"""Files the system creates are its owner's only (issue 15 item 6): the SQLite database and its
``-wal`` / ``-shm`` are 0600 whatever the umask; ``edc`` commands create files 0600 and folders
0700; keys are 0600 in a 0700 folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from edc.cli import main
from edc.db import make_engine


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask (022, the usual default), restored after the test."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_sqlite_database_wal_and_shm_are_0600(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "new" / "edc.sqlite3"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        engine.dispose()


def test_edc_commands_create_private_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           open_umask: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db, keys = tmp_path / "data" / "edc.sqlite3", tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    assert main(["init"]) == 0
    assert main(["demo"]) == 0
    out = tmp_path / "permissions.md"
    assert main(["accounts", "permissions", "--out", str(out)]) == 0
    capsys.readouterr()
    assert mode(keys) == 0o700 and {mode(p) for p in keys.iterdir()} == {0o600}
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), out):
        assert mode(p) == 0o600, p
