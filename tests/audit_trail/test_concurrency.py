"""Many writers, and a writer killed mid-stream: no gap, no fork, nothing acknowledged lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import PG_URL
from sqlalchemy import func, select

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger, verify
from edc import keyring
from edc.db import make_engine, session_factory

WRITER = Path(__file__).with_name("writer.py")
ROOT = Path(__file__).resolve().parents[2]


def spawn(url: str, key_dir: Path, writer: int, count: int, batch: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, str(key_dir), str(writer), str(count), str(batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def check_ledger(url: str, keys: keyring.Keyring, expected: int) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        seqs = s.execute(select(LedgerEntry.seq).order_by(LedgerEntry.seq)).scalars().all()
        assert seqs == list(range(1, expected + 1))  # no gap, no duplicate
        distinct = s.execute(select(func.count(func.distinct(LedgerEntry.prev_hash)))).scalar()
        assert distinct == expected  # no fork: every entry has its own predecessor
        report = verify(s, vkey=keys.signer.vkey)
        assert report.entries == expected
        assert report.checkpoints == expected // 500
    engine.dispose()


@pytest.mark.slow
def test_eight_concurrent_writers_append_2000_entries_each(
        fresh_url: str, keys: keyring.Keyring, key_dir: Path) -> None:
    writers, each, batch = 8, 2000, 25
    if PG_URL:  # processes on PostgreSQL
        procs = [spawn(fresh_url, key_dir, w, each, batch) for w in range(writers)]
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err
            assert out.count("ack ") == each
    else:  # threads on SQLite
        engine = make_engine(fresh_url)
        sessions = session_factory(engine)
        ledger = Ledger(signer=keys.signer, checkpoint_every=500)
        errors: list[BaseException] = []

        def run(w: int) -> None:
            try:
                for b in range(each // batch):
                    with sessions() as s, s.begin():
                        for j in range(batch):
                            ledger.append(s, actor=f"writer{w}", action="test.append",
                                          entity_type="test", entity_id=f"w{w}-{b}-{j}")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        engine.dispose()
        assert not errors
    check_ledger(fresh_url, keys, writers * each)


@pytest.mark.slow
def test_a_writer_killed_mid_stream_loses_no_acknowledged_entry(
        fresh_url: str, keys: keyring.Keyring, key_dir: Path) -> None:
    proc = spawn(fresh_url, key_dir, 1, 1_000_000, 1)
    acked: dict[int, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        _, seq, eid = line.split()
        acked[int(seq)] = eid
        if len(acked) >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    engine = make_engine(fresh_url)
    with session_factory(engine)() as s:
        report = verify(s, vkey=keys.signer.vkey)
        present = dict(s.execute(select(LedgerEntry.seq, LedgerEntry.entity_id)).all())
    engine.dispose()
    assert report.entries >= max(acked)
    for seq, eid in acked.items():
        assert present.get(seq) == eid
