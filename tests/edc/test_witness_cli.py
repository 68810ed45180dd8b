"""A ledger that proves itself from the first entry: a checkpoint at the end of every command
that appended, one within EDC_CHECKPOINT_SECONDS while the server runs, a witness outside the
database, and ``edc audit verify --witness / --against`` naming each tamper."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tamper import rewrite_consistently, truncate

from audit_trail.service import CHECKPOINT_TABLE, ENTRY_TABLE, ledger_size
from audit_trail.witness import Witness
from edc import keyring
from edc.cli import main
from edc.db import make_engine
from edc.jobs.checkpoints import CheckpointWorker, WitnessClient
from edc.settings import Settings
from edc.state import build_state
from edc.witness_http import make_server
from studies.kernel.events import Action


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    monkeypatch.setenv("EDC_UPLOAD_DIR", str(tmp_path / "uploads"))  # not the checkout's var/
    assert main(["init"]) == 0
    return keys


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def witness_url(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    """A witness serving on its own port, with its own key, configured in EDC_WITNESSES."""
    run(capsys, "audit", "export-checkpoints", "--out", str(tmp_path / "vk"))
    code, out, _ = run(capsys, "witness", "init", "--dir", str(tmp_path / "witness"),
                       "--name", "ethics.example/witness",
                       "--log-vkey", str(tmp_path / "vk" / "verifier-key.txt"))
    assert code == 0
    vkey = out.strip().splitlines()[-1]
    assert vkey.startswith("ethics.example/witness+")
    server = make_server(tmp_path / "witness", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("EDC_WITNESSES", f"{url} {vkey}")
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def signed_sizes(url: str) -> list[int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        sizes = list(conn.execute(select(CHECKPOINT_TABLE.c.tree_size)
                                  .order_by(CHECKPOINT_TABLE.c.tree_size)).scalars())
    engine.dispose()
    return sizes


def test_young_ledger_is_checkpointed_and_a_consistent_rewrite_is_caught(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "demo")
    assert code == 0
    code, out, _ = run(capsys, "audit", "verify")
    size = int(out.split("ledger intact: ", 1)[1].split(" ", 1)[0])
    assert size < 1000 and signed_sizes(fresh_url) == [size]  # the demo's end signed it
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        rewrite_consistently(conn, seq=size - 9, actor="mallory")
    engine.dispose()
    code, out, err = run(capsys, "audit", "verify")
    assert code == 1 and out == ""
    assert f"do not reproduce the signed checkpoint at size {size}: history was rewritten" in err


def test_witness_catches_truncation_with_the_checkpoints_deleted(
        witness_url: str, fresh_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo")
    assert code == 0
    size = signed_sizes(fresh_url)[-1]
    assert f"witness ethics.example/witness: cosigned size {size}" in err
    code, out, _ = run(capsys, "audit", "verify", "--witness", witness_url)
    assert code == 0 and "contains and extends 1 checkpoints held outside" in out

    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        truncate(conn, keep=size - 2)
    engine.dispose()
    code, out, _ = run(capsys, "audit", "verify")  # nothing in the database notices
    assert code == 0 and out.startswith(f"ledger intact: {size - 2} entries")
    code, out, err = run(capsys, "audit", "verify", "--witness", witness_url)
    assert code == 1 and out == ""
    assert (f"TRUNCATED OR ROLLED BACK: witness ethics.example/witness holds a checkpoint of "
            f"size {size} cosigned at ") in err
    assert f"the database holds only {size - 2} entries: entries {size - 1}..{size} " in err
    # The server side notices too: the witness will not cosign a smaller tree.
    code, _, err = run(capsys, "audit", "checkpoint")
    assert code == 1
    assert f"holds size {size} but the ledger has only {size - 2} entries" in err


def test_witness_catches_a_rewrite_resigned_with_a_stolen_key(
        witness_url: str, fresh_url: str, env: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "demo")
    size = signed_sizes(fresh_url)[-1]
    stolen = keyring.load(env).signer
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        rewrite_consistently(conn, seq=3, actor="mallory", signer=stolen)
    engine.dispose()
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0  # every checkpoint verifies: the key was stolen
    code, _, err = run(capsys, "audit", "verify", "--witness", witness_url)
    assert code == 1
    assert f"REWRITTEN WITH THE LOG'S KEY: witness ethics.example/witness holds a checkpoint " \
           f"of size {size}" in err
    # And the witness refuses to cosign the rewritten tree.
    code, _, err = run(capsys, "audit", "checkpoint")
    assert code == 1
    assert f"cosigned another tree of size {size}: the ledger was rewritten" in err


def test_verify_against_exported_cosigned_checkpoints(
        witness_url: str, fresh_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "demo")
    run(capsys, "demo")  # wrote nothing: no new checkpoint
    size = signed_sizes(fresh_url)[-1]
    out_dir = tmp_path / "auditor"
    code, out, _ = run(capsys, "witness", "export", "--dir", str(tmp_path / "witness"),
                       "--out", str(out_dir))
    assert code == 0 and out.startswith("wrote 1 cosigned checkpoints")
    wkey = str(out_dir / "witness-key.txt")
    code, out, _ = run(capsys, "audit", "verify", "--against", str(out_dir), "--witness-key", wkey)
    assert code == 0, out
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        truncate(conn, keep=size - 1)
    engine.dispose()
    code, _, err = run(capsys, "audit", "verify", "--against", str(out_dir),
                       "--witness-key", wkey)
    assert code == 1 and "TRUNCATED OR ROLLED BACK" in err
    assert str(out_dir / f"cosigned-{size:012d}.txt") in err


def test_server_signs_a_checkpoint_within_the_bound_after_a_new_entry(
        fresh_url: str, tmp_path: Path) -> None:
    key_dir = tmp_path / "k"
    keyring.create(key_dir, origin="t.example/ledger")
    state = build_state(Settings(database_url=fresh_url, key_dir=key_dir,
                                 environment="test", checkpoint_seconds=1))
    worker = CheckpointWorker(state.sessions, state.ledger, clients=[], interval=1)
    worker.start()
    try:
        with state.sessions() as s, s.begin():
            state.ledger.append(s, actor="u", action=Action.AUTH_LOGIN, entity_type="user",
                                entity_id="u")
        saved = time.monotonic()
        while time.monotonic() - saved < 5 and signed_sizes(fresh_url) != [1]:
            time.sleep(0.1)
        assert signed_sizes(fresh_url) == [1] and time.monotonic() - saved < 3
        with state.sessions() as s:
            assert ledger_size(s) == 1
            assert s.execute(select(func.count()).select_from(CHECKPOINT_TABLE)).scalar() == 1
    finally:
        worker.stop()
        worker.join(5)
        state.engine.dispose()


def test_server_retries_a_witness_that_was_down(
        fresh_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_dir = tmp_path / "k"
    keyring.create(key_dir, origin="t.example/ledger")
    state = build_state(Settings(database_url=fresh_url, key_dir=key_dir, environment="test"))
    w = Witness.create(tmp_path / "w", name="dso.example/w", log_vkeys=[state.keys.signer.vkey])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = WitnessClient(f"http://127.0.0.1:{port}", w.vkey)
    worker = CheckpointWorker(state.sessions, state.ledger, clients=[client], interval=60)
    try:
        with state.sessions() as s, s.begin():
            state.ledger.append(s, actor="u", action=Action.AUTH_LOGIN, entity_type="user",
                                entity_id="u")
        worker.run_once()  # the witness is down: signed, not cosigned
        assert signed_sizes(fresh_url) == [1] and client.last_error is not None
        server = make_server(w.directory, "127.0.0.1", port)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            worker.run_once()  # nothing new in the ledger, but the witness is behind
            assert client.last_error is None and client.held == 1
            assert w.latest("t.example/ledger").split("\n")[1] == "1"  # type: ignore[union-attr]
        finally:
            server.shutdown()
            server.server_close()
    finally:
        state.engine.dispose()


def test_edc_serve_signs_its_last_entries_when_it_stops(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "demo")
    before = signed_sizes(fresh_url)[-1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    edc = str(Path(sys.executable).with_name("edc"))
    proc = subprocess.Popen([edc, "serve", "--port", str(port)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login",
                       json={"username": "nobody", "password": "wrong password"})
        assert r.status_code == 401  # a refused login: one more ledger entry
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    engine = make_engine(fresh_url)
    with engine.connect() as conn:
        size = conn.execute(select(func.max(CHECKPOINT_TABLE.c.tree_size))).scalar()
        last = conn.execute(select(func.max(ENTRY_TABLE.c.seq))).scalar()
    engine.dispose()
    assert last == before + 1 and size == last  # signed before the server exited
