"""``edc entry``: bulk import, exports and the current-values proof of data entry (issue 5;
docs/investigators.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edc.cli.common import CliError, add, custodian, load_state, write_out
from edc.settings import Settings
from studies.entry import reading as entry_reading
from studies.entry.errors import ImportRefused


def cmd_entry_import(settings: Settings, args: argparse.Namespace) -> int:
    """Stream a REDCap flat CSV into the study in ONE transaction: all rows or none."""
    from studies.entry import bulk_import

    state = load_state(settings)

    def progress(rows: int) -> None:
        print(f"edc: {rows} rows read", file=sys.stderr, flush=True)

    try:
        fh = open(args.file, encoding="utf-8-sig", newline="")  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    with fh, state.sessions() as session:
        try:
            with session.begin():
                actor = custodian(session, args.by)
                out = bulk_import.import_redcap_csv(session, state.ledger, actor=actor,
                                                    study_code=args.study, lines=fh,
                                                    progress=progress)
        except ImportRefused as exc:
            for e in exc.errors:
                print(f"row {e['row']}, column {e['column']} ({e['field']}): {e['message']}",
                      file=sys.stderr)
            raise CliError(f"import refused: {len(exc.errors)} error(s); nothing was "
                           "written") from None
    print(f"imported batch {out['batch']}: {out['rows']} rows, {out['records']} form "
          f"records, {out['values']} values (sha256 {out['sha256']})")
    return 0


def cmd_entry_export_odm(settings: Settings, args: argparse.Namespace) -> int:
    from studies.entry import odm_export

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        data = odm_export.export_clinical_odm(
            session, state.ledger, actor=custodian(session, args.by), study_code=args.study,
            subjects=args.subject or None, form_names=args.form or None)
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


def cmd_entry_export_csv(settings: Settings, args: argparse.Namespace) -> int:
    from studies.entry import odm_export

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        text = odm_export.export_form_csv(session, state.ledger,
                                          actor=custodian(session, args.by),
                                          study_code=args.study, form_name=args.form)
    write_out(args.out, text)
    return 0


def cmd_entry_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Prove that the current-values table equals what the value versions and the ledger
    say (read-only)."""

    state = load_state(settings)
    with state.sessions() as session:
        problems = entry_reading.verify_current(session, study_code=args.study)
    for line in problems[:200]:
        print(line)
    print("current values match the versions and the ledger" if not problems
          else f"{len(problems)} mismatch(es)")
    return 1 if problems else 0


def register(sub: Any) -> None:
    ent = sub.add_parser("entry", help="data entry: bulk import, exports, consistency proof")
    esub = ent.add_subparsers(dest="entry_command", required=True)
    ei = add(esub, "import-csv", cmd_entry_import,
             "import a REDCap flat CSV (all rows or none; progress on stderr)")
    ei.add_argument("file")
    ei.add_argument("--study", required=True)
    ei.add_argument("--by", required=True, help="the importing user (PI or data manager)")
    eo = add(esub, "export-odm", cmd_entry_export_odm,
             "write ODM 1.3.2 ClinicalData with audit records")
    eo.add_argument("--study", required=True)
    eo.add_argument("--by", required=True)
    eo.add_argument("--subject", action="append", help="only this subject (repeatable)")
    eo.add_argument("--form", action="append", help="only this form (repeatable)")
    eo.add_argument("--out", required=True)
    ec = add(esub, "export-csv", cmd_entry_export_csv, "write one form as CSV")
    ec.add_argument("--study", required=True)
    ec.add_argument("--by", required=True)
    ec.add_argument("--form", required=True)
    ec.add_argument("--out")
    ev = add(esub, "verify", cmd_entry_verify,
             "prove the current-values table equals the versions and the ledger")
    ev.add_argument("--study")
