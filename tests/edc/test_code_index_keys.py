"""``edc keys rotate-code-index`` and wrong or missing key files: one transaction, the old key
kept retired, every entry proved to decrypt afterwards; interrupted (raised or killed) halfway
the index stays readable; a wrong or missing key is a one-line error that changes nothing."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nacl.utils
import pytest
from fastapi.testclient import TestClient
from pages_util import ENGLISH
from sqlalchemy import select

from audit_trail.models import LedgerEntry
from edc import keyring
from edc.app import create_app
from edc.cli import main
from edc.db import make_engine, session_factory
from edc.demo import (
    demo_cohort,
    demo_password,
)
from edc.settings import Settings
from edc.state import build_state
from studies.subjects import code_index
from studies.subjects import service as svc
from studies.subjects.crypto import key_id
from studies.subjects.models import CodeIndexEntry

DEMO_N = len(demo_cohort())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, fresh_url: str, tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    monkeypatch.setenv("EDC_DATABASE_URL", fresh_url)
    monkeypatch.setenv("EDC_KEY_DIR", str(keys))
    assert main(["init"]) == 0
    assert main(["demo"]) == 0  # the demo subjects, synthetic identities
    return keys


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(url: str) -> dict[str, tuple[str, bytes]]:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        rows = {e.code: (e.key_id, bytes(e.ciphertext))
                for e in s.execute(select(CodeIndexEntry)).scalars()}
    engine.dispose()
    return rows


def readable(url: str, key_dir: Path) -> dict[str, int]:
    """Every entry decrypts with the key directory as it is now; key id → entries."""
    keys = keyring.load(key_dir)
    engine = make_engine(url)
    with session_factory(engine)() as s:
        check = code_index.verify_code_index(s, keys=keys.code_index_keys())
    engine.dispose()
    assert check.entries == DEMO_N
    return check.by_key


def key_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("code_index.key*"))


def test_rotation_re_encrypts_all_retires_the_old_key_and_is_audited(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    old = keyring.load(env).code_index_key
    before = snapshot(fresh_url)
    code, out, err = run(capsys, "keys", "rotate-code-index", "--by", "demo.custodian")
    assert (code, err) == (0, "")
    new = keyring.load(env).code_index_key
    assert new != old and out.startswith(
        f"re-encrypted {DEMO_N} code-index entries under key {key_id(new)} (was {key_id(old)}); "
        f"all {DEMO_N} verified")
    [retired] = [n for n in key_files(env) if n.endswith(".retired")]
    assert key_files(env) == ["code_index.key", retired]
    assert base64.b64decode((env / retired).read_text()) == old
    assert oct((env / retired).stat().st_mode & 0o777) == "0o600"
    after = snapshot(fresh_url)
    assert set(after) == set(before)
    assert all(after[c][0] == key_id(new) and after[c][1] != before[c][1] for c in after)
    only_new = svc.CodeIndexKeys(current=new, blind=keyring.load(env).blind_index_key)
    engine = make_engine(fresh_url)
    with session_factory(engine)() as s:
        assert code_index.verify_code_index(s, keys=only_new).entries == DEMO_N
        [entry] = s.execute(select(LedgerEntry).where(
            LedgerEntry.action == "code_index.rotate_key")).scalars()
    engine.dispose()
    assert (entry.actor, entry.client) == ("demo.custodian", "cli")
    code, out, _ = run(capsys, "keys", "status")
    assert code == 0
    assert out.splitlines()[0].split()[-3:] == [key_id(new), "entries", str(DEMO_N)]
    assert code == 0 and run(capsys, "audit", "verify")[0] == 0


def test_only_the_custodian_may_rotate(env: Path, fresh_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    before, files = snapshot(fresh_url), key_files(env)
    code, out, err = run(capsys, "keys", "rotate-code-index", "--by", "demo.admin")
    assert code == 2 and err.strip() == "edc: permission code_index.rotate is required"
    assert (snapshot(fresh_url), key_files(env)) == (before, files)


def test_rotation_raised_halfway_leaves_the_old_key_and_index(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before, files = snapshot(fresh_url), key_files(env)
    real = code_index.rotate_code_index

    def interrupted(*args: object, **kwargs: object) -> object:
        def stop(i: int) -> None:
            if i == 1:
                raise KeyboardInterrupt  # Ctrl-C after one entry was re-encrypted
        return real(*args, **kwargs, on_entry=stop)  # type: ignore[arg-type]

    monkeypatch.setattr(code_index, "rotate_code_index", interrupted)
    code, _, _ = run(capsys, "keys", "rotate-code-index", "--by", "demo.custodian")
    assert code == 130
    assert (snapshot(fresh_url), key_files(env)) == (before, files)
    assert readable(fresh_url, env) == {key_id(keyring.load(env).code_index_key): DEMO_N}


KILLER = textwrap.dedent("""
    import os, signal, sys
    from edc import keyring
    from edc.cli import main
    from studies.subjects import code_index
    where = sys.argv[1]
    if where == "mid-transaction":
        real = code_index.rotate_code_index
        def interrupted(*a, **k):
            def die(i):
                if i == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k, on_entry=die)
        code_index.rotate_code_index = interrupted
    else:  # after the database committed, before the key file is promoted
        keyring.promote_code_index_key = lambda staged: os.kill(os.getpid(), signal.SIGKILL)
    sys.exit(main(["keys", "rotate-code-index", "--by", "demo.custodian"]))
""")


def kill_rotation(where: str) -> int:
    proc = subprocess.run([sys.executable, "-c", KILLER, where], env=dict(os.environ),
                          capture_output=True, timeout=120)
    return proc.returncode


def test_rotation_killed_mid_transaction_keeps_the_index_readable_and_recovers(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = keyring.load(env).code_index_key
    before = snapshot(fresh_url)
    assert kill_rotation("mid-transaction") == -9
    assert snapshot(fresh_url) == before  # nothing committed
    assert keyring.load(env).code_index_key == old
    assert readable(fresh_url, env) == {key_id(old): DEMO_N}
    code, out, _ = run(capsys, "keys", "rotate-code-index", "--by", "demo.custodian")
    assert code == 0
    assert "rotation that did not commit" in out.splitlines()[0]
    assert not list(env.glob("*.pending"))
    assert readable(fresh_url, env) == {key_id(keyring.load(env).code_index_key): DEMO_N}


def test_rotation_killed_after_commit_keeps_the_index_readable_and_recovers(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = keyring.load(env).code_index_key
    assert kill_rotation("after-commit") == -9
    [pending] = env.glob("*.pending")
    new_id = key_id(base64.b64decode(pending.read_text()))
    assert keyring.load(env).code_index_key == old  # not promoted …
    assert readable(fresh_url, env) == {new_id: DEMO_N}  # … yet every entry decrypts
    code, out, _ = run(capsys, "keys", "status")
    assert code == 0 and f"key id {new_id}  entries {DEMO_N}" in out
    _, out, _ = run(capsys, "demo")  # no new entry under the old key meanwhile
    assert "run `edc keys rotate-code-index` to finish it" in out
    code, out, _ = run(capsys, "keys", "rotate-code-index", "--by", "demo.custodian")
    assert code == 0 and out.startswith("completed an interrupted rotation")
    assert f"(was {new_id})" in out
    assert readable(fresh_url, env) == {key_id(keyring.load(env).code_index_key): DEMO_N}


def test_missing_code_index_key_is_a_one_line_error_and_changes_nothing(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(fresh_url)
    (env / "code_index.key").unlink()
    for argv in (["keys", "rotate-code-index", "--by", "demo.custodian"], ["keys", "status"],
                 ["demo"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert err == (f"edc: key file {env / 'code_index.key'} is missing; restore it from the "
                       "key backup (or run `edc init` on a new installation)\n")
    assert snapshot(fresh_url) == before
    assert key_files(env) == []


def test_wrong_code_index_key_is_a_one_line_error_and_changes_nothing(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(fresh_url)
    path = env / "code_index.key"
    path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, base64.b64encode(nacl.utils.random(32)) + b"\n")
    os.close(fd)
    code, out, err = run(capsys, "keys", "rotate-code-index", "--by", "demo.custodian")
    assert code == 2 and out == ""
    assert err.startswith("edc: the key directory lacks the code-index key ")
    assert len(err.splitlines()) == 1
    code, out, _ = run(capsys, "keys", "status")
    assert code == 1 and "MISSING key id" in out and f"{DEMO_N} entries cannot be decrypted" in out
    code, out, err = run(capsys, "demo")  # enrolling more under a wrong key is refused too
    assert "Demo subjects not enrolled: the key directory lacks the code-index key" in out
    assert snapshot(fresh_url) == before
    assert key_files(env) == ["code_index.key"]


def test_a_running_server_picks_up_the_rotated_key(
        env: Path, fresh_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # the test client is outside the hospital network: password-only login, as in conftest
    state = build_state(Settings(second_factor_enforced=False))
    with TestClient(create_app(state), base_url="http://testserver", headers=ENGLISH) as client:
        assert client.post("/api/v1/auth/login", json={
            "username": "demo.custodian",
            "password": demo_password("demo.custodian")}).status_code == 200
        [code] = [c for c in snapshot(fresh_url)][:1]
        ask = {"code": code, "reason": "before and after rotation"}
        before = client.post("/api/v1/code-index/lookup/identity", json=ask).json()
        assert run(capsys, "keys", "rotate-code-index", "--by", "demo.custodian")[0] == 0
        after = client.post("/api/v1/code-index/lookup/identity", json=ask).json()
        assert after == before and after["found"]
        (env / "code_index.key").unlink()
        r = client.post("/api/v1/code-index/lookup/identity", json=ask)
        assert r.status_code == 423 and "code_index.key is missing" in r.json()["error"]["message"]
    state.engine.dispose()
