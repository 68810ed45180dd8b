"""Encrypted, signed backups (``edc backup``), restore into an empty database only
(``edc restore``), and the one-command restore drill (``edc backup drill``)."""

from __future__ import annotations

import json
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import create_empty_database, drop_database
from factories import make_user
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from test_web_foundation import login
from test_witness_cli import env, run, signed_sizes, witness_url  # noqa: F401 - fixtures

from audit_trail.service import ENTRY_TABLE, Ledger
from edc.db import make_engine
from edc.settings import Settings
from edc.state import build_state
from studies.kernel.events import Action
from studies.kernel.roles import Role


@pytest.fixture
def age_keys(tmp_path: Path) -> tuple[Path, Path]:
    """The offline key pair, made with the real age-keygen as an operator would."""
    identity, recipient = tmp_path / "offline" / "identity.txt", tmp_path / "recipient.txt"
    identity.parent.mkdir()
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient.write_text(subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                                        capture_output=True, text=True).stdout)
    return identity, recipient


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A new, empty database (no schema) to restore into."""
    url = create_empty_database(tmp_path)
    yield url
    drop_database(url)


def entries(url: str) -> list[int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        seqs = list(conn.execute(select(ENTRY_TABLE.c.seq).order_by(ENTRY_TABLE.c.seq)).scalars())
    engine.dispose()
    return seqs


@pytest.mark.usefixtures("env")
def test_backup_is_encrypted_signed_private_and_restores_verified(
        fresh_url: str, empty_url: str, tmp_path: Path, age_keys: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    identity, recipient = age_keys
    run(capsys, "demo")
    size = signed_sizes(fresh_url)[-1]
    out = tmp_path / "nightly.age"
    code, printed, err = run(capsys, "backup", "--out", str(out), "--recipient", str(recipient))
    assert code == 0, err
    assert f"ledger checkpoint {size}" in printed
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    before = out.read_bytes()
    code, _, err = run(capsys, "backup", "--out", str(out), "--recipient", str(recipient))
    assert code == 2 and "exists; a backup never overwrites a file" in err
    assert out.read_bytes() == before
    assert b"ledger_entry" not in out.read_bytes()  # encrypted
    # The real age CLI opens it: a manifest, its signature and the snapshot; no key file.
    listing = subprocess.run(f"age -d -i {identity} {out} | tar t", shell=True, check=True,
                             capture_output=True, text=True).stdout.split()
    kind = "sqlite3" if fresh_url.startswith("sqlite") else "pgdump"
    assert listing == ["extract/manifest.json", "extract/manifest.sig",
                       f"extract/database.{kind}"]
    manifest = json.loads(subprocess.run(
        f"age -d -i {identity} {out} | tar xO extract/manifest.json", shell=True, check=True,
        capture_output=True, text=True).stdout)
    assert manifest["ledger_size"] == size and manifest["schema_revision"]
    assert manifest["checkpoint"].split("\n")[1] == str(size)
    # The backup is itself recorded, after the snapshot (the refused second one is not).
    assert entries(fresh_url)[-1] == size + 1

    monkeypatch.setenv("EDC_DATABASE_URL", empty_url)
    code, printed, err = run(capsys, "restore", str(out), "--identity", str(identity))
    assert code == 0, err
    assert f"ledger intact: {size} entries" in printed
    assert "current values match the versions and the ledger" in printed
    # The restore is recorded in the restored ledger, which is then signed.
    assert entries(empty_url) == list(range(1, size + 2))
    assert signed_sizes(empty_url)[-1] == size + 1
    # Restoring again over a database that is no longer empty is refused.
    code, _, err = run(capsys, "restore", str(out), "--identity", str(identity))
    assert code == 2 and "the target database is not empty" in err


@pytest.mark.usefixtures("env")
def test_one_flipped_byte_makes_restore_refuse(
        empty_url: str, tmp_path: Path, age_keys: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    identity, recipient = age_keys
    run(capsys, "demo")
    out = tmp_path / "b.age"
    assert run(capsys, "backup", "--out", str(out), "--recipient", str(recipient))[0] == 0
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "bad.age"
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("EDC_DATABASE_URL", empty_url)
    code, _, err = run(capsys, "restore", str(bad), "--identity", str(identity))
    assert code == 2 and "REFUSED" in err and "a byte of it was changed" in err
    if empty_url.startswith("sqlite"):
        assert not Path(make_url(empty_url).database or "").exists()  # nothing written
    else:
        engine = make_engine(empty_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_schema = 'public'")).scalar() == 0
        engine.dispose()


@pytest.mark.usefixtures("env")
def test_backup_during_concurrent_saves_holds_every_acknowledged_save(
        fresh_url: str, empty_url: str, tmp_path: Path, age_keys: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    identity, recipient = age_keys
    state = build_state(Settings())
    acknowledged: list[int] = []
    stop = threading.Event()

    def saver() -> None:
        while not stop.is_set():
            with state.sessions() as s, s.begin():
                e = state.ledger.append(s, actor="u", action=Action.ITEM_UPDATE,
                                        entity_type="item", entity_id=str(len(acknowledged)))
            acknowledged.append(e.seq)  # committed: the client was told "saved"

    thread = threading.Thread(target=saver)
    thread.start()
    try:
        while len(acknowledged) < 50:
            threading.Event().wait(0.01)
        before = list(acknowledged)
        out = tmp_path / "live.age"
        code, _, err = run(capsys, "backup", "--out", str(out), "--recipient", str(recipient))
        assert code == 0, err
    finally:
        stop.set()
        thread.join()
        state.engine.dispose()
    assert len(acknowledged) > len(before)  # saves went on during the backup
    monkeypatch.setenv("EDC_DATABASE_URL", empty_url)
    code, printed, err = run(capsys, "restore", str(out), "--identity", str(identity))
    assert code == 0, err
    assert set(before) <= set(entries(empty_url))


@pytest.mark.usefixtures("env")
def test_drill_restores_into_a_scratch_database_and_records_the_result(
        fresh_url: str, age_keys: tuple[Path, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    identity, recipient = age_keys
    run(capsys, "demo")
    code, out, err = run(capsys, "backup", "drill", "--recipient", str(recipient),
                         "--identity", str(identity))
    assert code == 0, err
    assert "restore drill passed" in out and "ledger intact" in out
    engine = make_engine(fresh_url)
    with engine.connect() as conn:
        row = conn.execute(select(ENTRY_TABLE.c.action, ENTRY_TABLE.c.outcome,
                                  ENTRY_TABLE.c.reason).order_by(ENTRY_TABLE.c.seq.desc())
                           .limit(1)).one()
    engine.dispose()
    assert row.action == "backup.drill" and row.outcome == "success"
    assert row.reason.startswith("restore drill passed")


def test_restoring_an_older_backup_over_a_newer_witnessed_state_is_named(
        witness_url: str, fresh_url: str, empty_url: str, tmp_path: Path,  # noqa: F811
        age_keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    identity, recipient = age_keys
    run(capsys, "demo")
    old = tmp_path / "old.age"
    assert run(capsys, "backup", "--out", str(old), "--recipient", str(recipient))[0] == 0
    newer = signed_sizes(fresh_url)[-1]  # the backup's own entry, signed and witnessed
    monkeypatch.setenv("EDC_DATABASE_URL", empty_url)
    code, _, err = run(capsys, "restore", str(old), "--identity", str(identity),
                       "--witness", witness_url)
    assert code == 1
    assert f"TRUNCATED OR ROLLED BACK: witness ethics.example/witness holds a checkpoint of " \
           f"size {newer}" in err
    assert "restored from an older backup" in err


def test_audit_page_shows_when_the_last_drill_passed(
        app_client: TestClient, session: Session, ledger: Ledger) -> None:
    make_user(session, ledger, "audrey", Role.AUDITOR)
    login(app_client, "audrey")
    page = BeautifulSoup(app_client.get("/audit").text, "html.parser")
    assert "No restore drill yet" in page.get_text()
    e = ledger.append(session, actor="system", action=Action.BACKUP_DRILL, entity_type="backup",
                      entity_id="abc", reason="restore drill passed: backup at ledger size 9")
    page = BeautifulSoup(app_client.get("/audit").text, "html.parser")
    line = next(p for p in page.select("p.ok") if "Last restore drill" in p.get_text())
    assert f"{e.ts[:19]}Z, restore drill passed: backup at ledger size 9" in line.get_text()


PDF = b"%PDF-1.4\n% a lab report kept with the backup\n%%EOF\n"


def _upload_a_lab_report() -> str:
    """An investigator uploads a PDF to the file field labs.lab_report (the real service);
    returns its SHA-256."""
    from factories import make_entry_study

    from studies.accounts import service as accounts
    from studies.entry import files

    state = build_state(Settings())
    try:
        with state.sessions() as s, s.begin():
            make_entry_study(s, state.ledger)
            user = make_user(s, state.ledger, "inv", Role.INVESTIGATOR, study="ENT-2026-01")
            row = files.upload(s, state.ledger, actor=accounts.actor_for(s, user, client="t"),
                               study_code="ENT-2026-01", subject_code="S01-ENT01",
                               event_name="baseline", form_name="labs", item="lab_report",
                               filename="report.pdf", content=PDF,
                               limits=state.settings.file_limits())
            return row.sha256
    finally:
        state.engine.dispose()


def _repack(tmp_path: Path, package: Path, identity: Path, recipient: Path,
            change: str) -> Path:
    """What someone holding the offline key could do: open the package, change the uploaded
    files (``drop`` one, or ``flip`` a byte of one), and seal it again with the real age."""
    work = tmp_path / "repack"
    work.mkdir()
    subprocess.run(f"age -d -i {identity} {package} | tar x -C {work}", shell=True, check=True)
    stored = sorted((work / "extract" / "files").glob("*/*"))
    if change == "drop":
        stored[0].unlink()
    else:
        data = bytearray(stored[0].read_bytes())
        data[-3] ^= 0x01
        stored[0].write_bytes(bytes(data))
    out = tmp_path / f"{change}.age"
    subprocess.run(f"cd {work} && find extract -type f | sort | tar c --no-recursion -T - "
                   f"| age -R {recipient} -o {out}", shell=True, check=True)
    return out


@pytest.mark.usefixtures("env")
def test_uploaded_files_are_in_the_backup_and_restored_verified(
        empty_url: str, tmp_path: Path, age_keys: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A file field's upload is kept outside the database: the backup carries it (listed and
    counted in the signed manifest), the restore puts it into the new installation's upload
    directory with its bytes checked, and a package with a file left out, or changed, is not
    restored as if it were whole."""
    identity, recipient = age_keys
    monkeypatch.setenv("EDC_UPLOAD_DIR", str(tmp_path / "uploads"))
    sha = _upload_a_lab_report()
    out = tmp_path / "with-files.age"
    code, _, err = run(capsys, "backup", "--out", str(out), "--recipient", str(recipient))
    assert code == 0, err
    listing = subprocess.run(f"age -d -i {identity} {out} | tar t", shell=True, check=True,
                             capture_output=True, text=True).stdout.split()
    assert f"extract/files/{sha[:2]}/{sha}" in listing
    manifest = json.loads(subprocess.run(
        f"age -d -i {identity} {out} | tar xO extract/manifest.json", shell=True, check=True,
        capture_output=True, text=True).stdout)
    assert manifest["files"] == 1 and manifest["files_bytes"] == len(PDF)

    # A package with the file left out is refused before anything is written.
    dropped = _repack(tmp_path, out, identity, recipient, "drop")
    monkeypatch.setenv("EDC_DATABASE_URL", empty_url)
    monkeypatch.setenv("EDC_UPLOAD_DIR", str(tmp_path / "restored"))
    code, _, err = run(capsys, "restore", str(dropped), "--identity", str(identity))
    assert code == 2 and "the uploaded files in the package are not the ones its manifest" in err
    assert not (tmp_path / "restored").exists()

    code, printed, err = run(capsys, "restore", str(out), "--identity", str(identity))
    assert code == 0, err
    assert "1 uploaded file(s) restored" in printed
    assert "every uploaded file the database names is there (1)" in printed
    kept = tmp_path / "restored" / sha[:2] / sha
    assert kept.read_bytes() == PDF and stat.S_IMODE(kept.stat().st_mode) == 0o600


@pytest.mark.usefixtures("env")
def test_a_restored_file_whose_bytes_were_changed_is_not_restored_and_named(
        empty_url: str, tmp_path: Path, age_keys: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    identity, recipient = age_keys
    monkeypatch.setenv("EDC_UPLOAD_DIR", str(tmp_path / "uploads"))
    sha = _upload_a_lab_report()
    out = tmp_path / "b.age"
    assert run(capsys, "backup", "--out", str(out), "--recipient", str(recipient))[0] == 0
    flipped = _repack(tmp_path, out, identity, recipient, "flip")
    monkeypatch.setenv("EDC_DATABASE_URL", empty_url)
    monkeypatch.setenv("EDC_UPLOAD_DIR", str(tmp_path / "restored"))
    code, _, err = run(capsys, "restore", str(flipped), "--identity", str(identity))
    assert code == 1
    assert f"uploaded file {sha}: its bytes do not match its SHA-256; not restored" in err
    assert f"uploaded file {sha}: named by the database, not in the backup" in err
    assert not (tmp_path / "restored" / sha[:2] / sha).exists()
