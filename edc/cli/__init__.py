"""The ``edc`` command. Every failure the operator can fix is one line on stderr and a non-zero
exit, never a traceback. One module per command group; ``system`` holds the top-level commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from audit_trail.errors import DomainError
from edc import keyring
from edc.cli import (
    accounts,
    audit,
    backup,
    conformance,
    entry,
    extract,
    keys,
    locks,
    study,
    system,
    witness,
)
from edc.cli.common import CliError, seal
from edc.db import DatabaseError
from edc.settings import Settings
from studies.kernel import i18n

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edc", description="Clinical-research EDC (GB/T 39725-2020)")
    sub = p.add_subparsers(dest="command", required=True)
    # The order of the groups is the order ``edc --help`` lists them in.
    system.register(sub)
    audit.register(sub)
    accounts.register(sub)
    keys.register(sub)
    study.register(sub)
    entry.register(sub)
    system.register_receive(sub)
    extract.register(sub)
    locks.register(sub)
    backup.register(sub)
    witness.register(sub)
    conformance.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Files the system creates (the database, extract packages, backups, keys) are its
    # owner's only: 0600, folders 0700.
    os.umask(0o077)
    # its messages in the terminal's language: EDC_LANG, else LANG (Chinese or English)
    lang = i18n.from_environment(dict(os.environ))
    i18n.set_process_language(lang)
    i18n.set_language(lang)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        try:
            return int(args.fn(settings, args))
        finally:
            seal()
    except (CliError, DatabaseError, keyring.KeyringError) as exc:
        print(f"edc: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"edc: {exc.message}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings validation: what is wrong, on one line
        what = "; ".join(f"{'.'.join(map(str, e['loc'])) + ': ' if e['loc'] else ''}"
                         f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        print(f"edc: invalid setting: {what}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"edc: invalid setting: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

