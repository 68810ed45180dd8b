"""``edc study``: import and export the eCRF metadata of a study (issue 3)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edc.cli.common import CliError, add, load_state
from edc.settings import Settings


def _operator() -> Any:
    import getpass

    from studies.registry.service import operator_actor

    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "operator"
    return operator_actor(name)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _print_import(result: Any) -> None:
    for f in result.forms:
        print(f"{result.study_code}: form {f['form']} version {f['version']} ({f['status']}, "
              f"{f['items']} items)")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if result.study_created:
        print(f"study {result.study_code} did not exist and was created as a draft")


def cmd_study_import_redcap(settings: Settings, args: argparse.Namespace) -> int:
    from studies.forms import service as forms

    raw = _read(args.file)
    try:
        csv_text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(f"{args.file} is not UTF-8 text (byte {exc.start})") from exc
    state = load_state(settings)
    with state.sessions() as session, session.begin():
        result = forms.import_redcap(session, state.ledger, actor=_operator(),
                                     study_code=args.study, text=csv_text)
    _print_import(result)
    return 0


def cmd_study_import_odm(settings: Settings, args: argparse.Namespace) -> int:
    from studies.forms import service as forms

    raw = _read(args.file)
    state = load_state(settings)
    with state.sessions() as session, session.begin():
        result = forms.import_odm(session, state.ledger, actor=_operator(),
                                  study_code=args.study, data=raw)
    _print_import(result)
    return 0


def cmd_study_export_odm(settings: Settings, args: argparse.Namespace) -> int:
    import datetime as dt

    from studies.forms import service as forms

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        data = forms.export_odm(session, state.ledger, actor=_operator(),
                                study_code=args.study, now=dt.datetime.now(dt.UTC))
    if args.out:
        try:
            Path(args.out).write_bytes(data)
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        print(f"wrote ODM 1.3.2 metadata of {args.study} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def register(sub: Any) -> None:
    study = sub.add_parser("study", help="import and export eCRF metadata of a study")
    ssub = study.add_subparsers(dest="study_command", required=True)
    ir = add(ssub, "import-redcap", cmd_study_import_redcap,
             "import the forms of a REDCap data dictionary (CSV) as draft versions")
    ir.add_argument("file")
    ir.add_argument("--study", required=True, help="the protocol number (created as a draft "
                    "if it does not exist)")
    io = add(ssub, "import-odm", cmd_study_import_odm,
             "import the forms and events of an ODM 1.3.2 MetaDataVersion")
    io.add_argument("file")
    io.add_argument("--study", required=True, help="the protocol number")
    eo = add(ssub, "export-odm", cmd_study_export_odm,
             "export the study's metadata as ODM 1.3.2 (standard output or --out)")
    eo.add_argument("--study", required=True, help="the protocol number")
    eo.add_argument("--out", help="write to this file instead of standard output")
