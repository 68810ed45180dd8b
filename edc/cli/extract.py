"""``edc extract``: build a queued extract for a sponsor now (issue 9)."""

from __future__ import annotations

import argparse
from typing import Any

from edc.cli.common import CliError, add, load_state
from edc.settings import Settings


def cmd_extract_build(settings: Settings, args: argparse.Namespace) -> int:
    """Build a queued extract now (otherwise a job runner builds it in the background)."""
    from edc.jobs.runner import Runner
    from studies.extracts.models import ExtractRequest

    state = load_state(settings)
    with state.sessions() as s:
        req = s.get(ExtractRequest, args.request_id)
        if req is None:
            raise CliError(f"no extract request {args.request_id}")
        if req.build_state != "queued":
            raise CliError(f"extract {args.request_id} is {req.build_state}; queue it first")
    if Runner(state).run_one(ref=args.request_id) is None:
        raise CliError(f"extract {args.request_id}: a job runner has just taken its build")
    with state.sessions() as s:
        req = s.get(ExtractRequest, args.request_id)
        assert req is not None
        print(f"{req.id}: {req.build_state}" + (f" — {req.build_error}" if req.build_error
                                                 else f", package sha256 {req.package_sha256}"))
    return 0 if req.build_state in ("done", "blocked") else 1


def register(sub: Any) -> None:
    ext = sub.add_parser("extract", help="extracts for sponsors")
    esub = ext.add_subparsers(dest="extract_command", required=True)
    eb = add(esub, "build", cmd_extract_build, "build a queued extract now")
    eb.add_argument("request_id")
