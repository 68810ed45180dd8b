"""Data-entry throughput benchmark (issues 5 and 17; not part of CI). Run:

    .venv/bin/python bench/entry_bench.py [--pg URL] [--quick] [--runs 3] [--seconds 20]
                                          [--clients 1,10,50] [--shared-records 5]
                                          [--own 0.9] [--layout own|pooled] [--records 20]

Prints, in one run, saves/s and p50/p95/p99 of the saves at each client count, for audited
saves (the product's form save: version check, checks, ledger entry) and plain saves (the same
values inserted into a plain table behind the same HTTP stack, session and permission check),
on SQLite (one process, as ``edc serve`` runs it) and, with ``--pg``, on PostgreSQL served by
one and by two uvicorn worker processes, with the CPU time per GET + PUT of the servers, of the
load generator and of PostgreSQL; then the ratios (2 workers / 1 worker, audited / plain,
50 / 10 clients) and the ceilings those CPU times set (one process runs its Python on one core
at a time; the machine's cores are shared by the servers, the load generator and PostgreSQL).

Every client has its own interactive session and loops: GET the form (version and values),
then PUT a changed value naming that version (audited) or PUT the values to the plain endpoint
(plain). Which record a client opens (``--layout``):

- ``own`` (the default, as in a hospital, where people mostly work on different subjects):
  every client has a record of its own and opens it with probability ``--own`` (0.9), else
  one of ``--shared-records`` (5) records that every client shares, so conflicts still happen
  and are checked;
- ``pooled`` (the earlier design): every client picks one of ``--records`` (20) shared records
  at random, so at 10 and 50 clients many audited saves are stale.

Saves/s counts only saves that made a new version (200, ``saved: true``); a stale save (409)
or a stale save of the value just saved (200, ``saved: false``) is not a save; the share of
PUTs that were stale is printed beside it. The cells are interleaved (each
round runs every client count × kind × database once, in that order) and each figure is the
median over ``--runs`` rounds, so that a slower minute of a shared machine does not fall on one
configuration only.

After the runs, from each database: zero lost updates (each record's version = 1 + its
successful saves, the versions handed out are exactly 2..N, no base version won twice, the
stored value is the newest successful save's), every refusal a 409 on a version that really
was stale, no other answer, and ``edc audit verify`` and ``edc entry verify`` pass. Exit
status 1 if any check fails.

Each database is fresh (a temporary SQLite file, temporary PostgreSQL databases made from
--pg) with a fresh key directory; the servers are uvicorn serving ``bench_app`` below (the
product app plus the bench-only plain endpoint, never mounted in the product).
"""

from __future__ import annotations

import argparse
import http.client
import json
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
    from factories import make_entry_study, make_user, publish_all
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
        publish_all(session, ledger, STUDY)  # as in a running trial: entry on published forms
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

    from edc.app import create_app, freeze_startup_objects
    from edc.policy import requires
    from edc.settings import Settings
    from edc.state import build_state
    from studies.kernel.roles import Perm

    state = build_state(Settings())
    app = create_app(state)

    @app.put("/api/v1/bench/plain/{study}/{subject}", dependencies=[requires(Perm.ENTRY_WRITE)])
    def plain(study: str, subject: str, body: SaveIn, request: Request,
              session: SessionDep, actor: CurrentActor) -> dict[str, Any]:
        rows = [{"id": str(uuid.uuid4()), "record": subject, "item": k, "value": str(v)}
                for k, v in body.values.items()]
        session.execute(text("INSERT INTO bench_plain (id, record, item, value) "
                             "VALUES (:id, :record, :item, :value)"), rows)
        return {"ok": True, "rows": len(rows)}

    freeze_startup_objects()  # as edc serve does once its application is built
    return app


def serve(workers: int, env: dict[str, str], port: int,
          root: Path = ROOT) -> subprocess.Popen[bytes]:
    """``workers`` uvicorn processes serving the bench app of the checkout at ``root``."""
    cmd = [sys.executable, "-m", "uvicorn", "bench.entry_bench:bench_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--no-server-header", "--workers", str(workers),
           *os.environ.get("EDC_BENCH_UVICORN", "").split()]  # e.g. "--http h11 --loop asyncio"
    log = open(Path(env["EDC_KEY_DIR"]).parent / f"server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env={**env, "PYTHONPATH": str(root)}, cwd=root, stdout=log,
                            stderr=log)
    for _ in range(600):
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
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn's worker processes)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    return _cpu_of(pids)


def database_cpu_seconds() -> float:
    """User + system CPU time of the machine's PostgreSQL server processes (named
    ``postgres``; 0 where none can be read): the database's share of the shared cores."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == "postgres":
                pids.append(int(d.name))
        except OSError:
            continue
    return _cpu_of(pids)


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Http:
    """One client's keep-alive connection (the standard library's ``http.client``): a load
    generator that costs the shared machine about a sixth of the CPU httpx did per GET + PUT
    (docs/benchmarks-entry.md), so that more of it is left to the servers measured."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Cookie": f"edc_session={token}", "Content-Type": "application/json"}

    def request(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """The status and the decoded JSON answer (the text where it is not JSON). A failed
        connection is closed, so that the next request opens a new one."""
        try:
            self.conn.request(method, url, None if body is None else json.dumps(body),
                              self.headers)
            r = self.conn.getresponse()
            raw = r.read()
        except OSError:
            self.conn.close()
            raise
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode("utf-8", "replace")

    def close(self) -> None:
        self.conn.close()


Result = tuple[str, int, int, "int | None", str]  # code, status, base, version, sbp


Layout = tuple[list[str], list[str], float]  # own records (one per client), shared, P(own)


def own_layout(clients: int, shared: int, p_own: float) -> tuple[int, Layout]:
    """The default layout (``--layout own``): how many records, and a record per client plus
    ``shared`` records every client opens with probability 1 - ``p_own``."""
    codes = [f"S01-B{n:05d}" for n in range(clients + shared)]
    return clients + shared, (codes[:clients], codes[clients:], p_own)


def concurrency(port: int, tokens: list[str], layout: Layout, seconds: float, kind: str,
                seed: int) -> dict[str, Any]:
    """``len(tokens)`` clients for ``seconds``: GET a form, PUT a save (``kind``: audited or
    plain). Client ``n`` opens its own record ``layout[0][n]`` with probability ``layout[2]``,
    else one of the shared records ``layout[1]``. Returns the saves' outcomes and latencies
    and any unexpected answer."""
    own, shared, p_own = layout
    results: list[Result] = []
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tokens) + 1)
    end = [0.0]

    def client(token: str, n: int) -> None:
        rnd = random.Random(seed * 1000 + n)
        c = Http(port, token)
        start.wait()
        while time.monotonic() < end[0]:
            code = (own[n] if own and (not shared or rnd.random() < p_own)
                    else rnd.choice(shared))
            url = f"/api/v1/studies/{STUDY}/entry/{code}/baseline/vital_signs"
            try:
                status, form = c.request("GET", url)
            except OSError as exc:
                with lock:
                    problems.append(f"GET failed: {exc!r}")
                continue
            if status != 200:
                with lock:
                    problems.append(f"GET {status}")
                continue
            base = form["version"]
            sbp = str(rnd.randrange(60, 260))
            while sbp == form["values"].get("sbp"):
                sbp = str(rnd.randrange(60, 260))
            body = {"base_version": base, "values": {**VITALS, "sbp": sbp},
                    "reasons": {"sbp": "transcription_error"}}
            target = url if kind == "audited" else f"/api/v1/bench/plain/{STUDY}/{code}"
            t0 = time.perf_counter()
            try:
                status, answer = c.request("PUT", target, body)
            except OSError as exc:  # a save is not repeated: a problem
                with lock:
                    problems.append(f"PUT failed: {exc!r}")
                continue
            dt_ = time.perf_counter() - t0
            with lock:
                latencies.append(dt_)
                if kind == "plain":
                    if status != 200:
                        problems.append(f"plain PUT {status}: {str(answer)[:200]}")
                elif status == 200 and not answer["saved"]:
                    # a stale save of the value another client had just saved: the same
                    # value is not a conflict, and nothing changes (no new version)
                    results.append((code, 0, base, answer["version"], sbp))
                elif status == 200:
                    results.append((code, 200, base, answer["version"], sbp))
                elif status == 409:
                    cur = answer["error"]["details"]["current_version"]
                    if cur <= base:
                        problems.append(f"409 on a version that was not stale: {code}")
                    results.append((code, 409, base, cur, sbp))
                else:
                    problems.append(f"PUT {status}: {str(answer)[:200]}")
        c.close()

    threads = [threading.Thread(target=client, args=(t, n)) for n, t in enumerate(tokens)]
    for t in threads:
        t.start()
    end[0] = time.monotonic() + seconds
    t0 = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    return {"results": results, "latencies": latencies, "problems": problems,
            "elapsed": time.monotonic() - t0}


def check_lost_updates(url: str, results: list[Result]) -> list[str]:
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


def warm_up(port: int, token: str, workers: int) -> None:
    """Before any cell: the first requests a server process answers build FastAPI's route
    tables and SQLAlchemy's mappers and statement caches (~2 s of CPU), which would otherwise
    be counted in the first cell. Form reads and plain saves only, on new connections so that
    every worker process gets some: no record changes, so the lost-update checks stay exact."""
    url = f"/api/v1/studies/{STUDY}/entry/S01-B00000/baseline/vital_signs"
    body = {"base_version": 0, "values": VITALS}
    for _ in range(20 * workers):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          cookies={"edc_session": token}) as c:
            c.get(url).raise_for_status()
            c.put(f"/api/v1/bench/plain/{STUDY}/S01-B00000", json=body).raise_for_status()


class Target:
    """One database served by ``workers`` uvicorn processes (of the checkout at ``root``)."""

    def __init__(self, name: str, url: str, pg: str | None, workers: int, tmp: Path,
                 records: int, clients: int, root: Path = ROOT) -> None:
        self.name, self.url, self.pg, self.workers = name, url, pg, workers
        self.key_dir = tmp / "keys"
        self.tokens = setup(url, self.key_dir, records, clients)
        self.env = {**os.environ, "EDC_DATABASE_URL": url, "EDC_KEY_DIR": str(self.key_dir),
                    "EDC_ENVIRONMENT": "development"}
        self.port = free_port()
        self.proc = serve(workers, self.env, self.port, root)
        warm_up(self.port, self.tokens[0], workers)
        self.results: list[Result] = []
        self.problems: list[str] = []
        self.cells: dict[tuple[str, int], list[dict[str, float]]] = {}

    def run(self, kind: str, clients: int, layout: Layout, seconds: float, seed: int) -> None:
        cpu0, gen0 = cpu_seconds(self.proc.pid), time.process_time()
        db0 = database_cpu_seconds() if self.pg else 0.0
        run = concurrency(self.port, self.tokens[:clients], layout, seconds, kind, seed)
        cpu, gen = cpu_seconds(self.proc.pid) - cpu0, time.process_time() - gen0
        db = database_cpu_seconds() - db0 if self.pg else 0.0
        lat = run["latencies"] or [0.0]
        n = len(run["latencies"])  # PUTs answered (saved, stale or unchanged)
        # a save is a PUT that made a new version: never a 409, never "saved": false
        saved = n if kind == "plain" else sum(1 for r in run["results"] if r[1] == 200)
        self.results += run["results"]
        self.problems += run["problems"]
        self.cells.setdefault((kind, clients), []).append({
            "rate": saved / run["elapsed"], "puts": n / run["elapsed"], "p50": pct(lat, 50),
            "p95": pct(lat, 95), "p99": pct(lat, 99), "cpu_ms": cpu / n * 1000 if n else 0.0,
            "gen_ms": gen / n * 1000 if n else 0.0, "db_ms": db / n * 1000 if n else 0.0,
            "stale": sum(1 for r in run["results"] if r[1] == 409) / n if n else 0.0})

    def median(self, kind: str, clients: int, key: str) -> float:
        return statistics.median(c[key] for c in self.cells[(kind, clients)])

    def check(self) -> list[str]:
        from conftest import drop_database

        stop(self.proc)
        problems = self.problems + check_lost_updates(self.url, self.results)
        edc = str(Path(sys.executable).parent / "edc")
        for cmd in (["audit", "verify"], ["entry", "verify"]):
            out = subprocess.run([edc, *cmd], env=self.env, capture_output=True, text=True)
            last = (out.stdout or out.stderr).strip().splitlines()[-1:]
            print(f"   {self.name}: edc {' '.join(cmd)}: {last[0] if last else '?'}")
            if out.returncode:
                problems.append(f"edc {' '.join(cmd)} failed")
        saved = sum(1 for r in self.results if r[1] == 200)
        stale = sum(1 for r in self.results if r[1] == 409)
        print(f"   {self.name}: {saved} audited saves saved, {stale} stale → 409, "
              f"{len(problems)} problems (lost updates, wrong or failed answers)"
              + ("" if not problems else "\n      " + "\n      ".join(problems[:10])))
        drop_database(self.url, self.pg)
        return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", help="PostgreSQL admin URL; temporary databases are made")
    ap.add_argument("--quick", action="store_true", help="one round of 3 s per cell")
    ap.add_argument("--runs", type=int, default=3, help="rounds; each figure is their median")
    ap.add_argument("--seconds", type=float, default=20, help="length of one cell")
    ap.add_argument("--clients", default="1,10,50")
    ap.add_argument("--layout", choices=("own", "pooled"), default="own",
                    help="own: a record per client plus a few shared ones (default); pooled: "
                         "every client on --records pooled records (the earlier design)")
    ap.add_argument("--own", type=float, default=0.9,
                    help="layout own: the share of a client's forms that are its own record")
    ap.add_argument("--shared-records", type=int, default=5,
                    help="layout own: records every client shares")
    ap.add_argument("--records", type=int, default=20,
                    help="layout pooled: records every client shares")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 3
    counts = [int(c) for c in args.clients.split(",")]
    if args.layout == "own":
        records, layout = own_layout(max(counts), args.shared_records, args.own)
        what = (f"{max(counts)} own records (opened {args.own:.0%} of the time) + "
                f"{args.shared_records} shared")
    else:
        records = args.records
        codes = [f"S01-B{n:05d}" for n in range(records)]
        layout, what = ([], codes, 0.0), f"{records} shared records"
    tmp = Path(tempfile.mkdtemp(prefix="edc-entry-bench-"))
    from conftest import create_database

    plan = [("SQLite", None, 1)] + ([("PG ×1", args.pg, 1), ("PG ×2", args.pg, 2)]
                                    if args.pg else [])
    targets = []
    try:
        for n, (name, pg, workers) in enumerate(plan):
            d = tmp / f"db{n}"
            d.mkdir()
            print(f"setting up {name}: {what}, {max(counts) + 1} sessions …", flush=True)
            targets.append(Target(name, create_database(d, pg), pg, workers, d, records,
                                  max(counts) + 1))
        for r in range(args.runs):
            for clients in counts:
                for kind in ("audited", "plain"):
                    for t in targets:
                        t.run(kind, clients, layout, args.seconds, seed=r)
            print(f"round {r + 1}/{args.runs} done", flush=True)
    finally:
        for t in targets:
            if t.proc.poll() is None:
                stop(t.proc)
    print(f"\n{args.runs} round(s) × {args.seconds:.0f} s per cell, medians; {what}; saves/s: "
          f"saves that made a new version (no 409, no unchanged save); PUT/s: every save "
          f"answered; latency of the PUT in ms; CPU: the server processes' CPU time per GET + "
          f"PUT; gen: the load generator's CPU time per GET + PUT and db: PostgreSQL's (they share "
          f"the machine); stale: share of PUTs answered 409\n")
    print(f"{'database':8} {'kind':8} {'clients':>7} {'saves/s':>8} {'PUT/s':>7} {'p50':>7} "
          f"{'p95':>7} {'p99':>7} {'CPU ms':>7} {'gen ms':>7} {'db ms':>6} {'stale':>6}")
    figures: dict[str, Any] = {}
    for t in targets:
        for kind in ("audited", "plain"):
            for clients in counts:
                m = {k: t.median(kind, clients, k) for k in
                     ("rate", "puts", "p50", "p95", "p99", "cpu_ms", "gen_ms", "db_ms",
                           "stale")}
                figures[f"{t.name} {kind} {clients}"] = m
                print(f"{t.name:8} {kind:8} {clients:7} {m['rate']:8.1f} {m['puts']:7.1f} "
                      f"{m['p50']:7.1f} "
                      f"{m['p95']:7.1f} {m['p99']:7.1f} {m['cpu_ms']:7.2f} {m['gen_ms']:7.2f} "
                      f"{m['db_ms']:6.2f} "
                      f"{m['stale'] * 100 if kind == 'audited' else 0:5.0f}%")
    print("\nratios")
    for t in targets:
        for clients in counts:
            a, p = t.median("audited", clients, "p50"), t.median("plain", clients, "p50")
            print(f"   {t.name}, {clients} clients: audited / plain save p50 "
                  f"{a / p if p else float('nan'):.2f}")
        if 10 in counts and 50 in counts:
            print(f"   {t.name}: audited saves/s at 50 / at 10 clients "
                  f"{t.median('audited', 50, 'rate') / t.median('audited', 10, 'rate'):.2f}")
    if len(targets) == 3:
        one, two = targets[1], targets[2]
        for clients in counts:
            for kind in ("audited", "plain"):
                gain = two.median(kind, clients, "rate") / one.median(kind, clients, "rate")
                print(f"   PostgreSQL 2 workers / 1 worker, {kind}, {clients} clients: "
                      f"saves/s {gain:.2f}")
    cores = os.cpu_count() or 1
    print(f"\nceilings at {max(counts)} clients: one process runs its Python on one core at a "
          f"time (1 s / the server's CPU per GET + PUT); the machine's {cores} cores are shared "
          f"by the servers, the load generator and PostgreSQL ({cores} s / their CPU per GET + "
          f"PUT)")
    for t in targets:
        for kind in ("audited", "plain"):
            ms, gen, db = (t.median(kind, max(counts), k) for k in ("cpu_ms", "gen_ms", "db_ms"))
            alone = f"one process at most {1000 / ms:.0f}/s, " if t.workers == 1 and ms else ""
            print(f"   {t.name}, {kind}: {alone}the machine at most "
                  f"{cores * 1000 / (ms + gen + db) if ms else float('nan'):.0f}/s, measured "
                  f"{t.median(kind, max(counts), 'rate'):.0f}/s")
    print("\nchecks")
    problems = []
    for t in targets:
        problems += t.check()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    print("\nALL CHECKS PASSED" if not problems else f"\n{len(problems)} PROBLEMS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
