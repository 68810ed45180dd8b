"""Builds run in the background (a job runner thread claiming queued build jobs); a failed build
says why and leaves no package behind (issue 9)."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from factories import make_extract_study, make_user

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory
from edc.jobs.runner import Runner, RunnerThread
from edc.settings import Settings
from edc.state import AppState
from studies.accounts.service import actor_for
from studies.extracts import custody as extract_custody
from studies.extracts import service as ex
from studies.extracts.models import ExtractRequest
from studies.extracts.schemas import RequestIn
from studies.kernel.roles import Role

pytestmark = pytest.mark.usefixtures("fast_password_hashing")



def queued(fresh_url: str, keys: keyring.Keyring, tmp_path: Path,
           ks: tuple[int, ...]) -> tuple[Any, Ledger, list[str], Path]:
    """Committed: a study with data and approved LDS requests, queued for building."""
    engine = make_engine(fresh_url)
    sessions = session_factory(engine)
    ledger = Ledger(signer=keys.signer)
    ident = tmp_path / "id.key"
    subprocess.run(["age-keygen", "-o", str(ident)], check=True, capture_output=True)
    pub = next(x.split(": ", 1)[1] for x in ident.read_text().splitlines()
               if x.startswith("# public key:"))
    ids = []
    with sessions() as s, s.begin():
        make_extract_study(s, ledger, "EXT-W", n=12)
        user = make_user(s, ledger, "sponsor1", Role.SPONSOR)
        dm = actor_for(s, make_user(s, ledger, "dm", Role.DATA_MANAGER), client=None)
        sponsor = actor_for(s, user, client=None)
        for i in range(3):  # a data security committee needs three members (Appendix C)
            make_user(s, ledger, f"dsc{i}", Role.COMMITTEE_MEMBER)
        for k in ks:
            req = ex.create_request(s, ledger, actor=sponsor, study_code="EXT-W",
                                    data=RequestIn(
                                        purpose="Efficacy analysis by age band",
                                        tier="lds", k=k, recipient_org="example-pharma",
                                        fields=["demographics.ethnicity", "labs.hba1c"],
                                        recipient_key=pub, use_from=dt.date.today(),
                                        use_until=dt.date.today() + dt.timedelta(days=30)))
            req.status = "approved"  # the approval rules are tested in test_extracts.py
            s.flush()
            extract_custody.queue_build(s, ledger, actor=dm, request_id=req.id)
            ids.append(req.id)
    return sessions, ledger, ids, ident


def test_worker_builds_queued_extracts_and_a_failed_build_leaves_nothing(
        fresh_url: str, keys: keyring.Keyring, tmp_path: Path) -> None:
    sessions, ledger, ids, _ = queued(fresh_url, keys, tmp_path, (5, 50))  # 12 < 50
    out = tmp_path / "extracts"
    state = AppState(settings=Settings(database_url=fresh_url, extract_dir=out),
                     engine=sessions.kw["bind"], sessions=sessions, keys=keys, ledger=ledger)
    worker = RunnerThread(Runner(state), interval=0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with sessions() as s:
                states = [s.get(ExtractRequest, i).build_state for i in ids]  # type: ignore
            if all(st not in ("queued", "running") for st in states):
                break
            time.sleep(0.3)
    finally:
        worker.stop()
        worker.join(10)
    with sessions() as s:
        good, bad = (s.get(ExtractRequest, i) for i in ids)
        assert good is not None and bad is not None
        assert good.build_state in ("done", "blocked") and good.progress == 100
        # a job writes in the server's language (EDC_LANG; Chinese by default)
        assert bad.build_state == "failed" and "无法达到k匿名" in (bad.build_error or "")
        assert [p.name for p in out.iterdir()] == [f"{good.id}.tar.age"]
    sessions.kw["bind"].dispose()


def test_cli_builds_exports_the_signing_key_and_receives(
        fresh_url: str, keys: keyring.Keyring, key_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from edc import cli

    sessions, _, (rid,), ident = queued(fresh_url, keys, tmp_path, (5,))
    for k, v in (("EDC_DATABASE_URL", fresh_url), ("EDC_KEY_DIR", str(key_dir)),
                 ("EDC_EXTRACT_DIR", str(tmp_path / "x"))):
        monkeypatch.setenv(k, v)
    assert cli.main(["extract", "build", rid]) == 0
    assert "done" in capsys.readouterr().out
    assert cli.main(["extract", "build", rid]) == 2  # not queued any more
    assert "queue it first" in capsys.readouterr().err
    assert cli.main(["keys", "export-signing-pub", "--out", str(tmp_path / "h.pub")]) == 0
    args = ["receive", str(tmp_path / "x" / f"{rid}.tar.age"), "--identity", str(ident),
            "--signer", str(tmp_path / "h.pub")]
    assert cli.main([*args, "--out", str(tmp_path / "got")]) == 0
    assert f"verified extract {rid}" in capsys.readouterr().out
    other = tmp_path / "other.pub"  # a key that did not sign it
    from nacl.signing import SigningKey

    from studies.extracts.package import public_key_text

    other.write_text(public_key_text(SigningKey.generate()))
    args[-1] = str(other)
    assert cli.main([*args, "--out", str(tmp_path / "got2")]) == 2
    assert "REFUSED: signature" in capsys.readouterr().err
    sessions.kw["bind"].dispose()
