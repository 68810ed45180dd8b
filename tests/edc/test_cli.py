"""The ``edc`` command as an operator uses it: init, demo, audit, proofs, and one-line errors."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import text
from triggers_util import drop_ledger_triggers

from audit_trail.service import Ledger
from edc import keyring
from edc.cli import main
from edc.db import make_engine, session_factory


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    monkeypatch.setenv("EDC_CHECKPOINT_EVERY", "5")
    assert main(["init"]) == 0
    return keys


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_private_key_files_and_is_idempotent(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(p.name for p in env.iterdir())
    assert files == ["blind_index.key", "code_index.key", "deid.key", "keyring.json",
                     "session.key", "signing.key"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in env.iterdir())
    before = {p.name: p.read_bytes() for p in env.iterdir()}
    code, out, _ = run(capsys, "init")
    assert code == 0 and "present" in out
    assert before == {p.name: p.read_bytes() for p in env.iterdir()}


def test_demo_prints_one_account_per_role_and_is_safe_twice(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, first, _ = run(capsys, "demo")
    assert code == 0
    assert "demo.custodian" in first and "demo.auditor" in first and "demo.admin" in first
    for n in ("", "2", "3"):  # a data security committee needs at least three (Appendix C)
        assert f"demo.committee_member{n} " in first
    assert "(LDS, pending the data security office's first review, then the committee)" in first
    size = entries_after_demo(capsys)
    code, second, _ = run(capsys, "demo")
    assert code == 0 and second == first
    code, out, _ = run(capsys, "audit", "verify")  # the second run wrote nothing
    # every 5th entry, and one at the end of the command that appended
    signed = size // 5 + (1 if size % 5 else 0)
    assert code == 0 and out.startswith(f"ledger intact: {size} entries, {signed} signed")


def entries_after_demo(capsys: pytest.CaptureFixture[str]) -> int:
    """How many ledger entries the demo wrote (others extend the demo, so not a constant)."""
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    return int(out.split("ledger intact: ", 1)[1].split(" ", 1)[0])


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_verify_names_the_altered_entry(env: Path, fresh_url: str, jobs: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "demo")
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        drop_ledger_triggers(conn)
        conn.execute(text("UPDATE ledger_entry SET actor = 'SYSTEM' WHERE seq = 8"))
    engine.dispose()
    code, out, err = run(capsys, "audit", "verify", "--jobs", jobs)
    assert code == 1 and out == ""
    assert err.strip() == ("LEDGER NOT INTACT: entry 8 does not match its leaf hash: "
                           "its content was altered")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_verify_names_a_broken_link_before_a_later_altered_entry(
        env: Path, fresh_url: str, jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "demo")
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        drop_ledger_triggers(conn)
        conn.execute(text("UPDATE ledger_entry SET prev_hash = leaf_hash WHERE seq = 5"))
        conn.execute(text("UPDATE ledger_entry SET reason = 'x' WHERE seq = 9"))
    engine.dispose()
    code, _, err = run(capsys, "audit", "verify", "--jobs", jobs)
    assert code == 1
    assert err.strip() == ("LEDGER NOT INTACT: entry 5 does not name its predecessor's hash: "
                           "the chain is broken")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_verify_neither_waits_for_nor_blocks_a_writer(
        env: Path, fresh_url: str, jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A verify of a large ledger runs beside the live system: it reads a snapshot (no write
    lock on SQLite), so a transaction that is writing meanwhile neither stops it nor is
    counted by it."""
    run(capsys, "demo")
    size = entries_after_demo(capsys)
    engine = make_engine(fresh_url)
    ledger = Ledger(signer=keyring.load(env).signer)
    with session_factory(engine)() as writer, writer.begin():  # holds the write lock
        ledger.append(writer, actor="tester", action="test.write", entity_type="t",
                      entity_id="1")
        started = time.monotonic()
        code, out, err = run(capsys, "audit", "verify", "--jobs", jobs)
        assert time.monotonic() - started < 30, "verify waited for the writer"
    engine.dispose()
    assert code == 0, err
    assert out.startswith(f"ledger intact: {size} entries")
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and out.startswith(f"ledger intact: {size + 1} entries")


def test_proofs_round_trip_through_export_and_check(
        env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "demo")
    size = entries_after_demo(capsys)
    assert size > 10 and size % 5  # a manual checkpoint adds a size that is not a multiple of 5
    code, out, _ = run(capsys, "audit", "checkpoint")
    assert code == 0 and out.startswith(f"checkpoint at tree size {size}")
    export = tmp_path / "export"
    code, out, _ = run(capsys, "audit", "export-checkpoints", "--out", str(export))
    sizes = [*range(5, size, 5), size]
    assert out.strip() == f"wrote {len(sizes)} checkpoints and verifier-key.txt to {export}"
    proof = tmp_path / "p.json"
    assert run(capsys, "audit", "proof", "inclusion", "3", "--size", "10",
               "--out", str(proof))[0] == 0
    vkey = str(export / "verifier-key.txt")
    code, out, _ = run(capsys, "audit", "check-proof", str(proof), "--vkey", vkey)
    assert code == 0 and out.startswith("inclusion proof OK: entry 3")
    code, out, _ = run(capsys, "audit", "proof", "consistency", "--from", "5", "--to",
                       str(size))
    assert code == 0
    proof.write_text(out)
    code, out, _ = run(capsys, "audit", "check-proof", str(proof), "--vkey", vkey)
    assert code == 0 and out.startswith("consistency proof OK")
    doc = json.loads(proof.read_text())
    doc["second"] = size - 1
    proof.write_text(json.dumps(doc))
    code, _, err = run(capsys, "audit", "check-proof", str(proof), "--vkey", vkey)
    assert code == 1 and "PROOF FAILED" in err
    code, _, err = run(capsys, "audit", "proof", "inclusion", "3", "--size", "7")
    assert code == 2 and err.strip() == (
        "edc: no signed checkpoint at size 7; checkpoints exist at sizes "
        + ", ".join(map(str, sizes)))


def redact(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, by: str,
           password: str, *extra: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return run(capsys, "audit", "redact", "3", "--by", by, "--reason", "identity in comment",
               "--password-stdin", *extra)


def test_redaction_needs_the_custodians_signature(
        env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from edc.demo import demo_password, demo_totp_secret

    run(capsys, "demo")
    size = entries_after_demo(capsys)
    code, _, err = redact(capsys, monkeypatch, "demo.investigator",
                          demo_password("demo.investigator"))
    assert code == 2 and "permission ledger.redact is required" in err
    code, _, err = redact(capsys, monkeypatch, "demo.custodian", "not-the-password")
    assert code == 2 and "wrong username or password" in err
    code, _, err = redact(capsys, monkeypatch, "demo.custodian", demo_password("demo.custodian"))
    assert code == 2 and "second-factor code" in err  # the demo custodian has TOTP
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "1 redacted" not in out
    code, out, _ = redact(capsys, monkeypatch, "demo.custodian", demo_password("demo.custodian"),
                          "--totp", pyotp.TOTP(demo_totp_secret("demo.custodian")).now())
    assert code == 0, out
    seq = int(out.strip().rsplit(" ", 1)[1])
    assert out.strip() == f"entry 3 redacted; recorded as entry {seq}" and seq > size
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "1 redacted" in out
    with make_engine(os.environ["EDC_DATABASE_URL"]).connect() as conn:
        actions = [r[0] for r in conn.execute(text(
            "SELECT action FROM ledger_entry WHERE seq > :n ORDER BY seq"), {"n": size})]
    # refusals audited; the signature (its session opened and closed) precedes the redaction
    assert actions.count("signature.sign") == 2 and actions[-2:] == ["auth.logout",
                                                                      "ledger.redact"]


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "signing.key").unlink(), "signing.key is missing"),
    (lambda d: (d / "code_index.key").write_text("not base64!!\n"), "code_index.key is corrupt"),
    (lambda d: (d / "keyring.json").write_text("{"), "keyring.json is corrupt"),
    (lambda d: (d / "deid.key").chmod(0o644), "deid.key is readable by others"),
])
def test_damaged_key_directory_gets_one_line(env: Path, capsys: pytest.CaptureFixture[str],
                                             damage, message: str) -> None:  # type: ignore[no-untyped-def]
    damage(env)
    code, out, err = run(capsys, "audit", "verify")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_missing_key_directory(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(tmp_path / "nowhere"))
    code, _, err = run(capsys, "serve")
    assert code == 2 and "does not exist; run `edc init` first" in err


def test_newer_database_schema_is_refused(env: Path, fresh_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffff9999'"))
    engine.dispose()
    code, _, err = run(capsys, "audit", "verify")
    assert code == 2 and "newer than this program knows" in err
    code, _, err = run(capsys, "migrate")
    assert code == 2 and "newer than this program knows" in err and "Traceback" not in err


def test_unreachable_postgresql_gets_one_line(env: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDC_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/edc")
    for argv in (["audit", "verify"], ["migrate"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "cannot reach the database" in err
        assert len(err.strip().splitlines()) == 1


def test_accounts_end_date_from_the_cli(env: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, "demo")
    code, out, _ = run(capsys, "accounts", "end-date", "demo.monitor", "2020-01-31",
                       "--by", "demo.admin")
    assert code == 0 and out.strip() == "demo.monitor: ends after 2020-01-31"
    code, _, err = run(capsys, "accounts", "end-date", "demo.monitor", "31/01/2020",
                       "--by", "demo.admin")
    assert code == 2 and "end_date: a date as YYYY-MM-DD" in err
    code, _, err = run(capsys, "accounts", "end-date", "demo.monitor", "2020-01-31",
                       "--by", "demo.monitor")
    assert code == 2 and "account.manage" in err
    from edc.demo import demo_password

    # the ended account cannot log in (here: to sign at the console)
    code, _, err = redact(capsys, monkeypatch, "demo.monitor", demo_password("demo.monitor"))
    assert code == 2 and "wrong username or password" in err
    code, out, _ = run(capsys, "accounts", "end-date", "demo.monitor", "", "--by", "demo.admin")
    assert code == 0 and out.strip() == "demo.monitor: no end date"
    code, _, err = redact(capsys, monkeypatch, "demo.monitor", demo_password("demo.monitor"))
    assert code == 2 and "permission ledger.redact is required" in err  # logged in again


def test_the_cli_speaks_the_terminals_language(env: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, "demo")
    argv = ("accounts", "end-date", "demo.monitor", "31/01/2020", "--by", "demo.admin")
    monkeypatch.setenv("EDC_LANG", "zh")
    code, _, err = run(capsys, *argv)
    assert code == 2 and "结束日期格式须为 YYYY-MM-DD" in err
    monkeypatch.delenv("EDC_LANG")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert "结束日期格式须为 YYYY-MM-DD" in run(capsys, *argv)[2]
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert "end_date: a date as YYYY-MM-DD" in run(capsys, *argv)[2]
