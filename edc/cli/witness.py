"""``edc witness``: a witness of the ledger on another machine (c2sp.org/tlog-witness).

Needs no database and no key directory of the EDC: only a directory of its own
(``--dir``) with its Ed25519 key and the checkpoints it cosigned.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from audit_trail import note
from audit_trail.witness import Witness, WitnessError
from edc.cli.common import CliError, add
from edc.settings import Settings


def _open(directory: str) -> Witness:
    try:
        return Witness(Path(directory))
    except WitnessError as exc:
        raise CliError(exc.message) from None


def cmd_init(_settings: Settings, args: argparse.Namespace) -> int:
    try:
        vkeys = [Path(p).read_text().strip() for p in args.log_vkey]
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    d = Path(args.dir)
    if (d / "witness.key").exists():
        raise CliError(f"{d} already holds a witness (its key is never replaced)")
    try:
        w = Witness.create(d, name=args.name, log_vkeys=vkeys)
    except (WitnessError, note.NoteError) as exc:
        raise CliError(f"cannot create the witness: {exc}") from None
    print(f"witness {w.name} created in {d}; its verifier key (give it to the log's operator "
          f"for EDC_WITNESSES and to auditors):\n{w.vkey}")
    return 0


def cmd_vkey(_settings: Settings, args: argparse.Namespace) -> int:
    print(_open(args.dir).vkey)
    return 0


def cmd_serve(_settings: Settings, args: argparse.Namespace) -> int:
    from edc.witness_http import make_server

    _open(args.dir)
    server = make_server(Path(args.dir), args.host, args.port)
    print(f"witness serving on http://{args.host}:{server.server_port}  (Ctrl-C to stop)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_add(_settings: Settings, args: argparse.Namespace) -> int:
    """The add-checkpoint call from a file, for a witness without a network (air gap)."""
    w = _open(args.dir)
    try:
        body = Path(args.request).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        print(w.add_checkpoint(body), end="")
    except WitnessError as exc:
        raise CliError(f"REFUSED ({exc.status}): {exc.message}") from None
    return 0


def cmd_export(_settings: Settings, args: argparse.Namespace) -> int:
    w = _open(args.dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "witness-key.txt").write_text(w.vkey + "\n")
    n = 0
    for origin in w.logs:
        for text in w.cosigned(origin):
            size = int(text.split("\n")[1])
            (out / f"cosigned-{size:012d}.txt").write_text(text)
            n += 1
    print(f"wrote {n} cosigned checkpoints and witness-key.txt to {out}")
    return 0


def register(sub: Any) -> None:
    w = sub.add_parser("witness", help="run a witness of the ledger (on another machine)")
    wsub = w.add_subparsers(dest="witness_command", required=True)
    i = add(wsub, "init", cmd_init, "create a witness: its own key and storage")
    i.add_argument("--dir", required=True)
    i.add_argument("--name", required=True, help="e.g. ethics.hospital.example/witness")
    i.add_argument("--log-vkey", action="append", required=True,
                   help="verifier-key.txt of a log to witness (repeatable)")
    v = add(wsub, "vkey", cmd_vkey, "print the witness's verifier key")
    v.add_argument("--dir", required=True)
    s = add(wsub, "serve", cmd_serve, "serve the tlog-witness HTTP interface")
    s.add_argument("--dir", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=9380)
    a = add(wsub, "add-checkpoint", cmd_add,
            "handle one add-checkpoint request read from a file (no network)")
    a.add_argument("--dir", required=True)
    a.add_argument("request")
    e = add(wsub, "export", cmd_export,
            "write every checkpoint this witness cosigned (for edc audit verify --against)")
    e.add_argument("--dir", required=True)
    e.add_argument("--out", required=True)
