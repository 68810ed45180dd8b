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


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from edc.app import (
        SERVER_OPTIONS,
        create_app,
        start_checkpoint_worker,
        start_extract_worker,
        start_read_audit_worker,
    )

    state = load_state(settings)
    app = create_app(state)
    start_extract_worker(app, state)
    # before the checkpointer: at shutdown the last views are written, then signed
    start_read_audit_worker(app, state)
    start_checkpoint_worker(app, state)
    print(f"serving on http://{args.host}:{args.port}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", **SERVER_OPTIONS)
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


def register_receive(sub: Any) -> None:
    rc = add(sub, "receive", cmd_receive,
             "sponsor side: verify, decrypt and unpack an extract package")
    rc.add_argument("package")
    rc.add_argument("--identity", required=True, help="age identity file (age-keygen)")
    rc.add_argument("--signer", required=True, help="the hospital's minisign public key")
    rc.add_argument("--out", required=True, help="directory to unpack into (new or empty)")
