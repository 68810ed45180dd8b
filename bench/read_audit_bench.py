"""Read-audit benchmark (issue 20; not part of CI). Run:

    .venv/bin/python bench/read_audit_bench.py [--requests 300] [--runs 5] [--pg URL]

A form page viewed with its read audit (the product's route: one ``read.form`` ledger entry
per view, buffered and written by the read-audit worker every second, as ``edc serve`` runs
it) vs the same page without it (a bench-only route mounted here, never in the product, that
calls the same reading function and renders the same page). Served by uvicorn on 127.0.0.1,
one client, requests alternating between the two; prints the p50 of each per run, the median
of the runs and the ratio (goal: audited ≤ 1.3 × unaudited), and checks that every audited
view became exactly one ledger entry.

Each run uses a fresh database (a temporary SQLite file, or a temporary PostgreSQL database
made from --pg) and a fresh key directory.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# at module level: FastAPI resolves the route's annotations in the module's globals
from fastapi import Request  # noqa: E402
from fastapi.responses import Response  # noqa: E402

from edc.deps import CurrentActor, SessionDep  # noqa: E402

STUDY = "BENCH-2026-01"
SUBJECT = "S01-B00001"
VITALS = {"visit_date": "2026-05-01", "height": "175", "weight": "70.0", "sbp": "120",
          "smoker": "0"}
PAGE = f"/studies/{STUDY}/entry/{SUBJECT}/baseline/vital_signs"
TWIN = f"/bench/unaudited/{STUDY}/{SUBJECT}/baseline/vital_signs"


def setup(url: str, key_dir: Path) -> str:
    """The study, one entered form, a monitor's session cookie."""
    from factories import PASSWORD, make_entry_study, make_user

    from audit_trail.service import Ledger
    from edc import keyring
    from edc.db import make_engine, session_factory
    from studies.accounts import service as accounts
    from studies.entry import service as entry
    from studies.entry.schemas import SaveIn
    from studies.kernel.roles import Role

    keyring.create(key_dir, origin="bench.hospital/ledger")
    engine = make_engine(url)
    ledger = Ledger(signer=keyring.load(key_dir).signer)
    with session_factory(engine)() as session, session.begin():
        make_entry_study(session, ledger, STUDY, subjects=(SUBJECT,))
        inv = make_user(session, ledger, "bench.inv", Role.INVESTIGATOR, study=STUDY)
        entry.save_form(session, ledger, actor=accounts.actor_for(session, inv, client="b"),
                        study_code=STUDY, subject_code=SUBJECT, event_name="baseline",
                        form_name="vital_signs", data=SaveIn(base_version=0, values=VITALS))
        make_user(session, ledger, "bench.mon", Role.MONITOR, study=STUDY)
        token, _ = accounts.login(session, ledger, username="bench.mon", password=PASSWORD,
                                  client="127.0.0.1")
    engine.dispose()
    return token


def bench_app(url: str, key_dir: Path) -> tuple[Any, Any]:
    """The product app with its read-audit worker, plus the unaudited twin of the form page."""
    from edc.app import create_app, start_read_audit_worker
    from edc.policy import requires
    from edc.routes.entry.pages import form_page
    from edc.settings import Settings
    from edc.state import build_state
    from studies.entry import reading
    from studies.kernel.roles import Perm

    state = build_state(Settings(database_url=url, key_dir=key_dir, environment="test",
                                 second_factor_enforced=False))
    app = create_app(state)
    start_read_audit_worker(app, state)

    @app.get("/bench/unaudited/{study}/{subject}/{event}/{form}",
             dependencies=[requires(Perm.ENTRY_READ)])
    def unaudited(study: str, subject: str, event: str, form: str, request: Request,
                  session: SessionDep, actor: CurrentActor) -> Response:
        view = reading.form_view(session, actor=actor, study_code=study, subject_code=subject,
                                 event_name=event, form_name=form)
        return form_page(request, actor, view)

    return app, state


def serve(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    from edc.app import SERVER_OPTIONS

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        **SERVER_OPTIONS))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    return srv, thread, f"http://127.0.0.1:{port}"


def reads_written(url: str) -> int:
    from sqlalchemy import func, select

    from audit_trail.models import LedgerEntry
    from edc.db import make_engine, session_factory

    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            return int(s.execute(select(func.count()).where(
                LedgerEntry.action == "read.form")).scalar_one())
    finally:
        engine.dispose()


def one_run(args: argparse.Namespace) -> tuple[float, float]:
    from conftest import create_database, drop_database

    tmp = Path(tempfile.mkdtemp(prefix="edc-read-bench-"))
    url = create_database(tmp, args.pg)
    try:
        token = setup(url, tmp / "keys")
        app, state = bench_app(url, tmp / "keys")
        srv, thread, base = serve(app)
        audited, plain = [], []
        with httpx.Client(base_url=base, cookies={"edc_session": token}) as c:
            for _ in range(10):  # warm up both
                c.get(PAGE).raise_for_status()
                r = c.get(TWIN)
                assert r.status_code == 200, r.text[:2000]
            for n in range(args.requests * 2):
                path = PAGE if n % 2 == 0 else TWIN
                t = time.perf_counter()
                c.get(path).raise_for_status()
                (audited if n % 2 == 0 else plain).append(time.perf_counter() - t)
        srv.should_exit = True
        thread.join(timeout=60)  # its shutdown writes the last buffered views
        state.engine.dispose()
        written = reads_written(url)
        expected = args.requests + 10
        assert written == expected, f"{written} read entries for {expected} audited views"
        return statistics.median(audited) * 1000, statistics.median(plain) * 1000
    finally:
        drop_database(url, args.pg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--requests", type=int, default=300, help="views per side per run")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pg", help="PostgreSQL admin URL; a temporary database is made")
    args = ap.parse_args()
    results = []
    for n in range(args.runs):
        a, p = one_run(args)
        results.append((a, p))
        print(f"run {n + 1}: form page p50 audited {a:.2f} ms, unaudited {p:.2f} ms, "
              f"ratio {a / p:.2f}", flush=True)
    a = statistics.median(r[0] for r in results)
    p = statistics.median(r[1] for r in results)
    db = "PostgreSQL" if args.pg else "SQLite"
    print(f"{db}: median of {args.runs} runs: audited {a:.2f} ms, unaudited {p:.2f} ms, "
          f"ratio {a / p:.2f} (goal ≤ 1.3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
