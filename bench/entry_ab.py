"""Audited saves of two checkouts of the product side by side (not part of CI). Run:

    git worktree add /tmp/before main        # the code to compare against
    .venv/bin/python bench/entry_ab.py --before /tmp/before [--pg URL] [--workers 1]
                                       [--clients 50] [--rounds 6] [--seconds 4]

On a shared machine the speed drifts by tens of per cent from one minute to the next, so two
runs of ``bench/entry_bench.py`` a few minutes apart cannot tell a change of 10 % from the
drift. Here both checkouts are served at once, each on a fresh database of its own (SQLite, or
PostgreSQL databases made from ``--pg``), by the same Python environment, and the same clients
(``entry_bench``'s default layout: a record per client, 5 shared) alternate between them in
short cells — ``before`` then ``after``, then ``after`` then ``before``, and so on — so both
meet the same minutes of the machine. Prints each side's median saves/s, server CPU per
GET + PUT and p99, and after / before. Runs ``entry_bench``'s checks (no lost update, every
refusal a 409 on a stale version, the ledger and the current values verified) on both; exits 1
if any fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import entry_bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, type=Path,
                    help="a checkout of the code to compare against (git worktree add …)")
    ap.add_argument("--pg", help="PostgreSQL admin URL; temporary databases are made")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes per side")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4, help="length of one cell")
    args = ap.parse_args()
    if not (args.before / "bench" / "entry_bench.py").is_file():
        ap.error(f"--before: {args.before} is not a checkout of this project")
    from conftest import create_database

    records, layout = entry_bench.own_layout(args.clients, 5, 0.9)
    tmp = Path(tempfile.mkdtemp(prefix="edc-entry-ab-"))
    sides: dict[str, entry_bench.Target] = {}
    try:
        for name, root in (("before", args.before.resolve()), ("after", ROOT)):
            d = tmp / name
            d.mkdir()
            print(f"setting up {name} ({root}) …", flush=True)
            sides[name] = entry_bench.Target(name, create_database(d, args.pg), args.pg,
                                             args.workers, d, records, args.clients + 1, root)
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for name in order:
                sides[name].run("audited", args.clients, layout, args.seconds, seed=r)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for side in sides.values():
            if side.proc.poll() is None:
                entry_bench.stop(side.proc)
    db = "PostgreSQL" if args.pg else "SQLite"
    print(f"\n{db}, {args.workers} worker process(es) per side, {args.clients} clients, audited "
          f"saves, {args.rounds} cells of {args.seconds:.0f} s per side, medians")
    rate = {}
    for name, side in sides.items():
        cells = side.cells[("audited", args.clients)]
        rate[name] = statistics.median(c["rate"] for c in cells)
        print(f"   {name:6}: {rate[name]:6.1f} saves/s, server CPU "
              f"{statistics.median(c['cpu_ms'] for c in cells):5.2f} ms per GET + PUT, p99 "
              f"{statistics.median(c['p99'] for c in cells):6.1f} ms; cells "
              + ", ".join(f"{c['rate']:.0f}" for c in cells))
    print(f"   after / before saves/s: {rate['after'] / rate['before']:.2f}")
    print("\nchecks")
    problems = [p for side in sides.values() for p in side.check()]
    print("\nALL CHECKS PASSED" if not problems else f"\n{len(problems)} PROBLEMS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
