"""Backup and restore of a large ledger (issue 16): time and peak memory of ``edc backup`` and
``edc restore`` (each run as the operator runs it, in a process of its own) for several ledger
sizes, to show that memory stays flat as the database grows.

Run: `.venv/bin/python bench/backup_bench.py [--entries 100000,1000000] [--pg URL]`.
Each database is a fresh one made for the run (a temporary SQLite file; a temporary PostgreSQL
database with --pg).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from conftest import create_database, create_empty_database, drop_database  # noqa: E402
from ledger_bench import bulk_fill  # noqa: E402

from edc import keyring  # noqa: E402

EDC = str(Path(sys.executable).with_name("edc"))


def timed(argv: list[str], env: dict[str, str], tmp: Path) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MiB) of one command (GNU time's maximum resident set)."""
    rss = tmp / "rss.txt"
    t0 = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss), *argv], env=env,
                          capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return took, int(rss.read_text().split()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entries", default="100000,1000000")
    p.add_argument("--pg", default=None)
    args = p.parse_args()
    print("| database | ledger entries | backup file | backup s | backup peak MiB "
          "| restore + verify s | restore peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.entries.split(",")):
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            keys = tmp / "keys"
            keyring.create(keys, origin="bench.example/ledger")
            url = create_database(tmp, args.pg)
            target = create_empty_database(tmp, args.pg)
            try:
                bulk_fill(url, n, keyring.load(keys).signer)
                subprocess.run(["age-keygen", "-o", str(tmp / "id.txt")], check=True,
                               capture_output=True)
                rcpt = subprocess.run(["age-keygen", "-y", str(tmp / "id.txt")], check=True,
                                      capture_output=True, text=True).stdout.strip()
                env = dict(os.environ, EDC_DATABASE_URL=url, EDC_KEY_DIR=str(keys),
                           EDC_ENVIRONMENT="test")
                b_s, b_mem = timed([EDC, "backup", "--out", str(tmp / "b.age"),
                                    "--recipient", rcpt], env, tmp)
                size = (tmp / "b.age").stat().st_size / 2**20
                env["EDC_DATABASE_URL"] = target
                r_s, r_mem = timed([EDC, "restore", str(tmp / "b.age"), "--identity",
                                    str(tmp / "id.txt"), "--jobs", "1"], env, tmp)
                kind = "PostgreSQL" if args.pg else "SQLite"
                print(f"| {kind} | {n:,} | {size:,.0f} MiB | {b_s:.1f} | {b_mem:.0f} "
                      f"| {r_s:.1f} | {r_mem:.0f} |", flush=True)
            finally:
                drop_database(target, args.pg)
                drop_database(url, args.pg)


if __name__ == "__main__":
    main()
