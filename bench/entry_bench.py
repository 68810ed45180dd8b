"""Data-entry benchmarks (issue 5; not part of CI). Run:

    .venv/bin/python bench/entry_bench.py [--clients 50] [--seconds 60] [--records 20]
                                          [--ratio-requests 400] [--pg URL]

1. Concurrency: a real ``edc serve`` (uvicorn) on 127.0.0.1; ``--clients`` threads, each with
   its own API token, save forms for ``--seconds`` on ``--records`` shared form records (so
   that many saves are stale). Checks afterwards: zero lost updates (every record's version
   equals 1 + its successful saves, the versions handed out are exactly 2..N, no base version
   won twice, the stored value is the newest save's), every refused save was a 409 on a
   version that really was stale, ``edc audit verify`` and ``edc entry verify`` pass.
   Prints p50/p95/p99 of the saves.
2. Audited save vs plain insert of the same values behind the same HTTP stack: uvicorn
   serving the product app plus a bench-only endpoint mounted here (never in the product)
   that inserts the same values into a plain table in one transaction. One client, requests
   alternating; prints the p50 of each and the ratio (goal: audited ≤ 2 × plain).

Each run uses a fresh database (a temporary SQLite file, or a temporary PostgreSQL database
made from --pg) and a fresh key directory.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fastapi import Request  # noqa: E402

from edc.deps import CurrentActor, SessionDep  # noqa: E402
from studies.entry import reading as entry_reading  # noqa: E402
from studies.entry.schemas import SaveIn  # noqa: E402

STUDY = "BENCH-2026-01"
VITALS = {"visit_date": "2026-05-01", "height": "175", "weight": "70.0", "sbp": "120",
          "smoker": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def setup(url: str, key_dir: Path, records: int, clients: int) -> list[str]:
    """Create the study with ``records`` subjects whose baseline vital signs are
    entered once, a plain table for part 2, and one API token per client."""
    from factories import make_entry_study, make_user
    from sqlalchemy import text

    from audit_trail.service import Ledger
    from edc import keyring
    from edc.db import make_engine, session_factory
    from studies.accounts import service as accounts
    from studies.entry import service as entry
    from studies.kernel.roles import Role

    keyring.create(key_dir, origin="bench.hospital/ledger")
    engine = make_engine(url)
    ledger = Ledger(signer=keyring.load(key_dir).signer)
    codes = [f"S01-B{n:05d}" for n in range(records)]
    out = []
    with session_factory(engine)() as session, session.begin():
        make_entry_study(session, ledger, STUDY, subjects=tuple(codes))
        user = make_user(session, ledger, "bench.inv", Role.INVESTIGATOR, study=STUDY)
        actor = accounts.actor_for(session, user, client="bench")
        for code in codes:
            entry.save_form(session, ledger, actor=actor, study_code=STUDY, subject_code=code,
                            event_name="baseline", form_name="vital_signs",
                            data=SaveIn(base_version=0, values=VITALS))
        # Interactive sessions (cookies), one per client. API tokens would do as well, but
        # every token use is a ledger entry written at the start of the request, which puts
        # all requests, reads included, in one queue on the ledger head.
        from factories import PASSWORD

        for n in range(clients + 1):
            make_user(session, ledger, f"bench.inv{n}", Role.INVESTIGATOR, study=STUDY)
            token, _ = accounts.login(session, ledger, username=f"bench.inv{n}",
                                      password=PASSWORD, client="127.0.0.1")
            out.append(token)
        session.execute(text("CREATE TABLE bench_plain (id VARCHAR(36) PRIMARY KEY, "
                             "record VARCHAR(36) NOT NULL, item VARCHAR(64) NOT NULL, "
                             "value TEXT)"))
    engine.dispose()
    return out


def bench_app() -> Any:
    """The product app plus a bench-only plain endpoint (uvicorn --factory)."""
    from sqlalchemy import text

    from edc.app import create_app
    from edc.policy import requires
    from edc.settings import Settings
    from edc.state import build_state
    from studies.kernel.roles import Perm

    settings = Settings()
    pool = os.environ.get("EDC_BENCH_POOL")
    engine = None
    if pool:  # --pool: a connection for every worker thread (see docs/benchmarks-entry.md)
        from edc.db import make_engine

        engine = make_engine(settings.database_url, pool_size=int(pool), max_overflow=0,
                             pool_timeout=120)
    state = build_state(settings, engine=engine)
    app = create_app(state)
    if os.environ.get("EDC_BENCH_CHECKPOINTER"):  # as edc serve runs: checkpoints, witnesses
        from edc.app import start_checkpoint_worker

        start_checkpoint_worker(app, state)

    @app.put("/api/v1/bench/plain/{study}/{subject}", dependencies=[requires(Perm.ENTRY_WRITE)])
    def plain(study: str, subject: str, body: SaveIn, request: Request,
              session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
        rows = [{"id": str(uuid.uuid4()), "record": subject, "item": k, "value": str(v)}
                for k, v in body.values.items()]
        session.execute(text("INSERT INTO bench_plain (id, record, item, value) "
                             "VALUES (:id, :record, :item, :value)"), rows)
        return {"ok": True, "rows": len(rows)}

    return app


def serve(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = open(Path(env["EDC_KEY_DIR"]).parent / f"server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {log.name}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def concurrency(port: int, tokens: list[str], codes: list[str], seconds: float
                ) -> dict[str, Any]:
    results: list[tuple[str, int, int, int | None, str]] = []  # code, status, base, ver, sbp
    latencies: list[float] = []
    problems: list[str] = []
    resets = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(token: str, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          cookies={"edc_session": token}) as c:
            while time.monotonic() < end:
                code = rnd.choice(codes)
                url = f"/api/v1/studies/{STUDY}/entry/{code}/baseline/vital_signs"
                try:
                    g = c.get(url)
                except httpx.TransportError:  # a GET is safe to repeat
                    with lock:
                        resets[0] += 1
                    continue
                if g.status_code != 200:
                    with lock:
                        problems.append(f"GET {g.status_code}")
                    continue
                base = g.json()["version"]
                sbp = str(rnd.randrange(60, 260))
                while sbp == g.json()["values"].get("sbp"):
                    sbp = str(rnd.randrange(60, 260))
                t0 = time.perf_counter()
                r = c.put(url, json={"base_version": base, "values": {**VITALS, "sbp": sbp},
                                     "reasons": {"sbp": "transcription_error"}})
                dt_ = time.perf_counter() - t0
                with lock:
                    latencies.append(dt_)
                    if r.status_code == 200:
                        results.append((code, 200, base, r.json()["version"], sbp))
                    elif r.status_code == 409:
                        cur = r.json()["error"]["details"]["current_version"]
                        if cur <= base:
                            problems.append(f"409 on a version that was not stale: {code}")
                        results.append((code, 409, base, cur, sbp))
                    else:
                        problems.append(f"PUT {r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(t, n)) for n, t in enumerate(tokens)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"results": results, "latencies": latencies, "problems": problems,
            "elapsed": time.monotonic() - t0, "resets": resets[0]}


def check_lost_updates(url: str, results: list[tuple[str, int, int, int | None, str]]
                       ) -> list[str]:
    from sqlalchemy import select

    from edc.db import make_engine, session_factory
    from studies.entry import service as entry
    from studies.entry.models import FormRecord
    from studies.subjects.models import Subject

    problems = []
    engine = make_engine(url)
    with session_factory(engine)() as session:
        rows = session.execute(select(Subject.code, FormRecord.id, FormRecord.version).join(
            FormRecord, FormRecord.subject_id == Subject.id)).all()
        for code, rid, version in rows:
            ok = [r for r in results if r[0] == code and r[1] == 200]
            versions = sorted(r[3] for r in ok if r[3] is not None)
            bases = [r[2] for r in ok]
            if version != 1 + len(ok):
                problems.append(f"{code}: version {version}, {len(ok)} successful saves")
            if versions != list(range(2, version + 1)):
                problems.append(f"{code}: versions handed out {versions[:5]}…")
            if len(set(bases)) != len(bases):
                problems.append(f"{code}: a base version won twice")
            if ok:
                newest = max(ok, key=lambda r: r[3] or 0)
                if entry.current_values(session, rid).get("sbp") != newest[4]:
                    problems.append(f"{code}: stored value is not the newest save's")
        problems += entry_reading.verify_current(session)
    engine.dispose()
    return problems


def ratio(port: int, token: str, codes: list[str], n: int) -> tuple[float, float]:
    audited, plain = [], []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                      cookies={"edc_session": token}) as c:
        versions = {code: c.get(f"/api/v1/studies/{STUDY}/entry/{code}/baseline/vital_signs"
                                ).json()["version"] for code in codes}
        for i in range(n):
            code = codes[i % len(codes)]
            body = {"base_version": versions[code],
                    "values": {**VITALS, "sbp": str(60 + (i % 190))},
                    "reasons": {"sbp": "transcription_error"}}
            t0 = time.perf_counter()
            r = c.put(f"/api/v1/studies/{STUDY}/entry/{code}/baseline/vital_signs", json=body)
            audited.append(time.perf_counter() - t0)
            assert r.status_code == 200, (r.status_code, r.request.url, r.text)
            versions[code] = r.json()["version"]
            t0 = time.perf_counter()
            r = c.put(f"/api/v1/bench/plain/{STUDY}/{code}", json=body)
            plain.append(time.perf_counter() - t0)
            assert r.status_code == 200, (r.status_code, r.request.url, r.text)
    return statistics.median(audited) * 1000, statistics.median(plain) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--ratio-requests", type=int, default=400)
    ap.add_argument("--witness", action="store_true",
                    help="part 2 with the checkpointer every second submitting to a witness")
    ap.add_argument("--pg", help="PostgreSQL admin URL; a temporary database is made")
    ap.add_argument("--pool", type=int, help="part 1 through the bench app with a pool of N "
                    "connections instead of `edc serve` (whose pool is 20 + 10)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edc-entry-bench-"))
    from conftest import create_database, drop_database

    url = create_database(tmp, args.pg)  # a temporary database; dropped at the end
    key_dir = tmp / "keys"
    print(f"database: {url.split('@')[-1]}; setting up {args.records} records, "
          f"{args.clients} clients …", flush=True)
    tokens = setup(url, key_dir, args.records, args.clients)
    codes = [f"S01-B{n:05d}" for n in range(args.records)]
    env = {**os.environ, "EDC_DATABASE_URL": url, "EDC_KEY_DIR": str(key_dir),
           "EDC_ENVIRONMENT": "development"}
    edc = str(Path(sys.executable).parent / "edc")

    port = free_port()
    if args.pool:
        proc = serve([sys.executable, "-m", "uvicorn", "bench.entry_bench:bench_app",
                      "--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level",
                      "warning"], {**env, "PYTHONPATH": str(ROOT),
                                   "EDC_BENCH_POOL": str(args.pool)}, port)
    else:
        proc = serve([edc, "serve", "--port", str(port)], env, port)
    try:
        run = concurrency(port, tokens[:args.clients], codes, args.seconds)
    finally:
        stop(proc)
    res, lat = run["results"], run["latencies"] or [0.0]
    if run["problems"]:
        from collections import Counter

        print("   problems:", Counter(p[:60] for p in run["problems"]).most_common(5))
    ok = sum(1 for r in res if r[1] == 200)
    stale = sum(1 for r in res if r[1] == 409)
    where = f"the app with a pool of {args.pool}" if args.pool else "`edc serve`"
    print(f"\n1. {args.clients} clients × {args.seconds:.0f} s against {where}: "
          f"{len(lat)} saves ({len(lat) / run['elapsed']:.0f}/s), {ok} saved, {stale} stale "
          f"→ 409 (GETs retried after a connection reset: {run['resets']})")
    print(f"   save latency p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
          f"p99 {pct(lat, 99):.1f} ms")
    problems = run["problems"] + check_lost_updates(url, res)
    print(f"   lost updates / wrong answers: {len(problems)}"
          + ("" if not problems else "\n   " + "\n   ".join(problems[:20])))
    for cmd in (["audit", "verify"], ["entry", "verify"]):
        out = subprocess.run([edc, *cmd], env=env, capture_output=True, text=True)
        print(f"   edc {' '.join(cmd)}: {(out.stdout or out.stderr).strip().splitlines()[-1]}")
        if out.returncode:
            problems.append(f"edc {' '.join(cmd)} failed")

    port = free_port()
    ratio_env = {**env, "PYTHONPATH": str(ROOT)}
    witness_server = None
    if args.witness:
        witness_server, ratio_env = start_witness(tmp, key_dir, ratio_env)
    proc = serve([sys.executable, "-m", "uvicorn", "bench.entry_bench:bench_app", "--factory",
                  "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                 ratio_env, port)
    try:
        audited, plain = ratio(port, tokens[-1], codes, args.ratio_requests)
    finally:
        stop(proc)
        if witness_server is not None:
            held = witness_server.held()
            witness_server.shutdown()
            print(f"   witness cosigned up to size {held}")
    print(f"\n2. audited save vs plain insert, same HTTP stack, {args.ratio_requests} each: "
          f"p50 {audited:.1f} ms vs {plain:.1f} ms → ratio {audited / plain:.2f} "
          f"(goal ≤ 2)")
    drop_database(url, args.pg)
    return 1 if problems else 0


class _WitnessServer:
    def __init__(self, directory: Path, origin: str) -> None:
        import threading

        from edc.witness_http import make_server

        self.directory, self.origin = directory, origin
        self.server = make_server(directory, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def held(self) -> str:
        from audit_trail.witness import Witness

        latest = Witness(self.directory).latest(self.origin)
        return latest.split("\n")[1] if latest else "nothing"

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_witness(tmp: Path, key_dir: Path, env: dict[str, str]
                  ) -> tuple[_WitnessServer, dict[str, str]]:
    """A witness on a local port; the served app signs every second and submits to it."""
    from audit_trail.witness import Witness
    from edc import keyring

    signer = keyring.load(key_dir).signer
    w = Witness.create(tmp / "witness", name="bench.example/witness", log_vkeys=[signer.vkey])
    srv = _WitnessServer(w.directory, signer.origin)
    return srv, {**env, "EDC_BENCH_CHECKPOINTER": "1", "EDC_CHECKPOINT_SECONDS": "1",
                 "EDC_WITNESSES": f"http://127.0.0.1:{srv.server.server_port} {w.vkey}"}


if __name__ == "__main__":
    sys.exit(main())
