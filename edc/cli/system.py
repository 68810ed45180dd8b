"""The top-level commands: ``edc init``, ``migrate``, ``demo``, ``serve`` and ``receive``
(the sponsor's side of an extract)."""

from __future__ import annotations

import argparse
from typing import Any

from edc import keyring
from edc.cli.common import CliError, add, load_state
from edc.db import DatabaseError, alembic_config, make_engine
from edc.settings import Settings
from studies.extracts.errors import PackageError


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from alembic import command
    from sqlalchemy.exc import OperationalError

    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(settings.database_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot reach the database: {str(exc.orig).strip().splitlines()[0]}; is the server "
            "running and EDC_DATABASE_URL right?") from exc
    except Exception as exc:  # alembic's "Can't locate revision" for a newer database
        if "Can't locate revision" in str(exc):
            raise DatabaseError("the database schema is newer than this program knows; "
                                "upgrade the software before using this database") from exc
        raise
    finally:
        engine.dispose()
    print("database schema is up to date")
    return 0


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    created = keyring.create(settings.key_dir, origin=settings.ledger_origin)
    keyring.load(settings.key_dir)
    if created:
        print(f"key directory {settings.key_dir}: created {', '.join(created)} (mode 0600). "
              "Back it up apart from the database.")
    else:
        print(f"key directory {settings.key_dir}: present")
    return cmd_migrate(settings, args)


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> int:
    from edc import demo

    if settings.environment == "production":
        raise CliError("refusing to load demo data in production (EDC_ENVIRONMENT=production)")
    state = load_state(settings)
    with state.sessions() as session, session.begin():
        lines = demo.load(session, state)
    print("\n".join(lines))
    return 0


SQLITE_ONE_PROCESS = (
    "SQLite is the one-process embedded mode: one `edc serve` process runs the web "
    "application and its jobs")


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from edc.app import (
        SERVER_OPTIONS,
        create_app,
        freeze_startup_objects,
        start_jobs,
        start_read_audit_worker,
    )

    state = load_state(settings)
    if args.workers < 1:
        raise CliError("--workers: at least 1")
    if args.workers > 1 and not state.shared:
        raise CliError(f"--workers {args.workers}: {SQLITE_ONE_PROCESS}; use PostgreSQL "
                       "(EDC_DATABASE_URL=postgresql+psycopg://…) for several web processes")
    print(f"serving on http://{args.host}:{args.port}"
          + (f" with {args.workers} worker processes" if args.workers > 1 else "")
          + "  (Ctrl-C to stop)", flush=True)
    if args.workers > 1:
        # Each process builds its own application, engine and pool (edc.app.factory).
        state.engine.dispose()
        # A worker loads the whole application and checks the schema before it answers the
        # supervisor's health check: give it a minute (uvicorn's 5 s default kills a worker
        # that starts slowly on a busy machine, again and again).
        uvicorn.run("edc.app:factory", factory=True, workers=args.workers, host=args.host,
                    port=args.port, log_level="info", timeout_worker_healthcheck=60,
                    **SERVER_OPTIONS)
        return 0
    app = create_app(state)
    # before the job runner's checkpointer: at shutdown the last views are written, then signed
    start_read_audit_worker(app, state)
    start_jobs(app, state)
    freeze_startup_objects()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", **SERVER_OPTIONS)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run queued jobs: until stopped (SIGTERM, Ctrl-C), or with --once until none is left."""
    import signal
    import threading

    from edc.jobs.runner import Runner, loop

    halt = threading.Event()
    if not args.once:  # a stop asked for while starting is kept too
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: halt.set())
    state = load_state(settings)
    runner = Runner(state)
    if args.once:
        runner.schedule()
        n = runner.run_pending()
        print(f"{n} job(s) run")
        return 0
    if not state.shared:
        raise CliError(f"{SQLITE_ONE_PROCESS}; `edc worker` needs PostgreSQL (on SQLite, "
                       "`edc worker --once` runs the queued jobs while the server is stopped)")
    print(f"worker {runner.name} running jobs (lease {runner.lease:.0f} s; Ctrl-C to stop)",
          flush=True)
    loop(runner, halt=halt, interval=args.interval)
    runner.last_round()
    print(f"worker {runner.name} stopped", flush=True)
    return 0


def cmd_receive(_settings: Settings, args: argparse.Namespace) -> int:
    """Sponsor side: verify the signature, decrypt, check every hash, unpack."""
    from pathlib import Path

    from studies.extracts import package as pkg

    try:
        identity = Path(args.identity).read_text()
        signer = Path(args.signer).read_text()
    except OSError as e:
        raise CliError(f"cannot read {e.filename}: {e.strerror}") from None
    try:
        m = pkg.receive(Path(args.package), identity=identity, signer_pub=signer,
                        out=Path(args.out))
    except PackageError as e:
        raise CliError(f"REFUSED: {e}") from None
    print(f"verified extract {m['extract_id']} ({m['tier'].upper()}, study {m['study']}): "
          f"{len(m['files'])} files, {m['rows']} rows, snapshot at ledger size "
          f"{m['snapshot']['ledger_seq']}; use until {m['expiry']}, destruction certificate "
          f"due {m['destruction_certificate_due']} -> {args.out}")
    return 0


def register(sub: Any) -> None:
    add(sub, "init", cmd_init, "create the key directory if absent and migrate the database")
    add(sub, "migrate", cmd_migrate, "apply database migrations")
    add(sub, "demo", cmd_demo, "load the demo study and demo accounts (safe to run twice)")
    s = add(sub, "serve", cmd_serve, "serve the web application")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1,
                   help="web processes (PostgreSQL only; SQLite is one process)")
    w = add(sub, "worker", cmd_worker, "run queued jobs: extract builds, checkpoints, sweeps, "
            "backups (PostgreSQL; any number of workers)")
    w.add_argument("--once", action="store_true",
                   help="queue the periodic jobs due, run everything queued, then exit")
    w.add_argument("--interval", type=float, default=2.0, help="seconds between polls")


def register_receive(sub: Any) -> None:
    rc = add(sub, "receive", cmd_receive,
             "sponsor side: verify, decrypt and unpack an extract package")
    rc.add_argument("package")
    rc.add_argument("--identity", required=True, help="age identity file (age-keygen)")
    rc.add_argument("--signer", required=True, help="the hospital's minisign public key")
    rc.add_argument("--out", required=True, help="directory to unpack into (new or empty)")
