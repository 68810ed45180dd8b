"""One process or several (issue 17): SQLite says it is the one-process embedded mode when asked
for more; ``edc worker --once`` runs the queued and periodic jobs — here the sweep, which ends
idle sessions (audited) and prunes what no longer counts. The several-process deployment on
PostgreSQL is tests/edc/test_scaling_pg.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import PG_URL
from factories import make_user
from sqlalchemy import func, select

from audit_trail.models import LedgerEntry
from audit_trail.service import Ledger
from edc import keyring
from edc.cli import main
from edc.db import make_engine, session_factory
from studies.accounts.models import LoginThrottle, UserSession
from studies.jobs import service as jobs
from studies.jobs.models import Job
from studies.kernel.roles import Role


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    monkeypatch.setenv("EDC_UPLOAD_DIR", str(tmp_path / "uploads"))  # a backup carries them
    assert main(["init"]) == 0
    return keys


@pytest.mark.skipif(bool(PG_URL), reason="the refusal is SQLite's; on PostgreSQL several "
                    "web processes are tests/edc/test_scaling_pg.py")
def test_sqlite_refuses_more_than_one_web_process_and_a_separate_worker(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "SQLite is the one-process embedded mode" in err and "PostgreSQL" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "SQLite is the one-process embedded mode" in err and "edc worker --once" in err


def test_the_sweep_ends_idle_sessions_and_prunes_throttles_and_old_jobs(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(fresh_url)
    sessions = session_factory(engine)
    ledger = Ledger(signer=keyring.load(env).signer)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with sessions() as s, s.begin():
        user = make_user(s, ledger, "idle.person", Role.INVESTIGATOR)
        s.add(UserSession(id="a" * 64, user_id=user.id, last_seen=long_ago))
        s.add(UserSession(id="b" * 64, user_id=user.id))  # in use
        s.add(LoginThrottle(key="a:someone", hits=[1.0], updated_at=long_ago))
        jobs.enqueue(s, kind="sweep", ref="old")
    with sessions() as s, s.begin():
        old = s.execute(select(Job).where(Job.ref == "old")).scalar_one()
        old.state, old.finished_at = "done", long_ago
    assert main(["worker", "--once"]) == 0
    assert "job(s) run" in capsys.readouterr().out
    with sessions() as s:
        idle, live = s.get(UserSession, "a" * 64), s.get(UserSession, "b" * 64)
        assert idle is not None and idle.end_reason == "idle_timeout"
        assert live is not None and live.ended_at is None
        entry = s.execute(select(LedgerEntry).where(
            LedgerEntry.action == "auth.timeout")).scalar_one()
        assert (entry.actor, entry.reason) == ("idle.person", "idle_timeout")
        assert s.get(LoginThrottle, "a:someone") is None
        assert s.execute(select(func.count()).select_from(Job).where(
            Job.ref == "old")).scalar() == 0
        kinds = {j.kind: j.state for j in s.execute(select(Job)).scalars()}
        assert kinds == {"checkpoint": "done", "sweep": "done"}
    engine.dispose()


def test_a_job_claimed_three_times_by_runners_that_died_is_failed_with_the_reason(
        env: Path, fresh_url: str) -> None:
    from edc.jobs.runner import Runner
    from edc.settings import Settings
    from edc.state import build_state

    state = build_state(Settings())
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with state.sessions() as s, s.begin():
        jobs.enqueue(s, kind="sweep", ref="doomed")
    for attempt in (1, 2, 3):  # three runners claimed it and died (their leases ran out)
        with state.sessions() as s, s.begin():
            assert jobs.claim(s, worker=f"dead-{attempt}", lease=dt.timedelta(seconds=1),
                              now=long_ago + dt.timedelta(seconds=10 * attempt)) is not None
    ctx = Runner(state).run_one(ref="doomed")
    assert ctx is not None and ctx.attempt == 4
    with state.sessions() as s:
        job = s.execute(select(Job).where(Job.ref == "doomed")).scalar_one()
        assert job.state == "failed"
        assert "stopped 3 times before finishing" in (job.error or "")
    state.engine.dispose()


def test_the_worker_writes_a_scheduled_backup_and_audits_it(
        env: Path, fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    ident = tmp_path / "backup.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    monkeypatch.setenv("EDC_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("EDC_BACKUP_RECIPIENT", pub)
    assert main(["worker", "--once"]) == 0
    (written,) = (tmp_path / "backups").iterdir()
    assert written.name.startswith("edc-") and written.name.endswith(".backup.age")
    assert (written.stat().st_mode & 0o777) == 0o600
    engine = make_engine(fresh_url)
    with engine.connect() as c:
        entry = c.execute(select(LedgerEntry).where(
            LedgerEntry.action == "backup.create")).one()
        assert entry.actor == "system" and written.name in (entry.reason or "")
    engine.dispose()
    import io
    import tarfile

    import pyrage

    identity = pyrage.x25519.Identity.from_str(
        next(x for x in ident.read_text().splitlines() if x.startswith("AGE-SECRET-KEY")))
    plain = pyrage.decrypt(written.read_bytes(), [identity])
    names = tarfile.open(fileobj=io.BytesIO(plain)).getnames()
    assert names[:2] == ["extract/manifest.json", "extract/manifest.sig"] and len(names) == 3


def test_a_backup_dir_without_a_recipient_is_refused(
        env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDC_BACKUP_DIR", str(tmp_path / "backups"))
    assert main(["worker", "--once"]) == 2
    assert "EDC_BACKUP_DIR needs EDC_BACKUP_RECIPIENT" in capsys.readouterr().err


def test_builds_queued_before_the_upgrade_become_jobs(tmp_path: Path) -> None:
    """Migration 0019: a build queued (or cut off running) under the old in-process builder is
    queued as a job, so a runner builds it after the upgrade."""
    import pyrage
    from alembic import command
    from alembic.script import ScriptDirectory
    from conftest import create_empty_database, drop_database
    from factories import make_extract_study
    from sqlalchemy import update

    from edc.db import alembic_config
    from studies.accounts.service import actor_for
    from studies.extracts import service as ex
    from studies.extracts.models import ExtractRequest
    from studies.extracts.schemas import RequestIn

    url = create_empty_database(tmp_path)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            # the schema just before the jobs migration (0019), whatever precedes it
            before = ScriptDirectory.from_config(cfg).get_revision("0019").down_revision
            command.upgrade(cfg, str(before))
        ledger = Ledger(signer=keyring.load(_keys(tmp_path)).signer)
        pub = str(pyrage.x25519.Identity.generate().to_public())
        ids = []
        with session_factory(engine)() as s, s.begin():
            make_extract_study(s, ledger, "EXT-UP", n=6)
            sponsor = actor_for(s, make_user(s, ledger, "sponsor1", Role.SPONSOR), client=None)
            for i in range(3):  # a data security committee needs three members (Appendix C)
                make_user(s, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER)
            for state in ("queued", "running", "done"):
                req = ex.create_request(s, ledger, actor=sponsor, study_code="EXT-UP",
                                        data=RequestIn(
                                            purpose="Efficacy analysis by age band",
                                            tier="lds", k=5, recipient_org="example-pharma",
                                            fields=["labs.hba1c"], recipient_key=pub,
                                            use_from=dt.date.today(),
                                            use_until=dt.date.today() + dt.timedelta(days=9)))
                s.execute(update(ExtractRequest).where(ExtractRequest.id == req.id)
                          .values(build_state=state))
                ids.append(req.id)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with session_factory(engine)() as s:
            queued = {j.ref: j for j in s.execute(select(Job)).scalars()}
            assert set(queued) == set(ids[:2])
            assert all(j.state == "queued" and j.payload == {"request_id": j.ref}
                       for j in queued.values())
            assert {s.get(ExtractRequest, i).build_state for i in ids[:2]} == {  # type: ignore[union-attr]
                "queued"}
    finally:
        engine.dispose()
        drop_database(url)


def _keys(tmp_path: Path) -> Path:
    d = tmp_path / "upgrade-keys"
    keyring.create(d, origin="upgrade.test/ledger")
    return d


def test_a_served_process_keeps_its_start_up_objects_out_of_the_collectors_walks(
        env: Path, tmp_path: Path) -> None:
    """A web process (``edc serve``'s, one of ``--workers N``) freezes what start-up made once
    its application is built, so the garbage collector's full collections — pauses that fell
    on running requests (docs/benchmarks-entry.md) — no longer walk it."""
    import os
    import subprocess
    import sys

    code = ("import gc; from edc.app import factory; app = factory(); "
            "print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "EDC_UPLOAD_DIR": str(tmp_path / "files"),
                              "EDC_EXTRACT_DIR": str(tmp_path / "extracts")}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().splitlines()[-1]) > 50_000  # the modules, app and routes
