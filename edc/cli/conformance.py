"""``edc conformance``: the clause → feature → test table (docs/conformance.md) and the signed
Appendix F self-check report for the data security office (issue 20)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from edc.cli.common import CliError, add, load_state, write_out
from edc.settings import Settings


def cmd_conformance_table(_settings: Settings, args: argparse.Namespace) -> int:
    from studies.oversight.conformance import render

    write_out(args.out, render())
    return 0


def cmd_conformance_report(settings: Settings, args: argparse.Namespace) -> int:
    from edc import selfcheck_report
    from studies.accounts import service as accounts
    from studies.oversight import selfcheck

    out = Path(args.out)
    if not out.parent.is_dir():
        raise CliError(f"--out: no such directory {out.parent}")
    state = load_state(settings)
    signer = state.keys.signer
    with state.sessions() as session, session.begin():
        by = accounts.find_user(session, args.by)
        if by is None:
            raise CliError(f"no account named {args.by!r}")
        actor = accounts.actor_for(session, by, client="cli")
        report = selfcheck.run(session, state.ledger, actor=actor, vkey=signer.vkey,
                               now=dt.datetime.now(dt.UTC))
    comment = (f"GB/T 39725-2020 Appendix F self-check {report.generated_at:%Y-%m-%dT%H:%MZ} "
               f"by {report.generated_by}: " + ", ".join(
                   f"{n} {r.value}" for r, n in report.counts().items()))
    html_path, pdf_path = out.with_suffix(".html"), out.with_suffix(".pdf")
    for path, data in ((html_path, selfcheck_report.render_html(
            report, vkey=signer.vkey).encode()),
                       (pdf_path, selfcheck_report.render_pdf(report, vkey=signer.vkey))):
        sig = selfcheck_report.write_signed(path, data, signer.key, comment=comment)
        print(f"{path} (signature {sig})")
    print(selfcheck_report.summary_line(report))
    print("verify: edc keys export-signing-pub --out hospital.pub && "
          f"minisign -Vm {html_path} -p hospital.pub")
    return 0


def register(sub: Any) -> None:
    grp = sub.add_parser("conformance", help="GB/T 39725 conformance table and the Appendix F "
                         "self-check report")
    csub = grp.add_subparsers(dest="conformance_command", required=True)
    t = add(csub, "table", cmd_conformance_table,
            "render the conformance table (docs/conformance.md) from the code")
    t.add_argument("--out")
    r = add(csub, "report", cmd_conformance_report,
            "run the Appendix F self-check now and write it as signed HTML and PDF")
    r.add_argument("--out", required=True,
                   help="file name; FILE.html, FILE.pdf and their .minisig are written")
    r.add_argument("--by", required=True,
                   help="the data security officer's or auditor's username (audited)")
