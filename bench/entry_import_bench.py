"""Bulk-import benchmark (issue 5; not part of CI):

    .venv/bin/python bench/entry_import_bench.py [--rows 100000] [--pg URL]

Writes a REDCap flat CSV of ``--rows`` rows (10 subjects × repeating follow-up visits) to a
temporary file, imports it with the CLI's code path (one transaction, streamed, batched), and
prints rows per second and the peak resident memory sampled at every progress line — flat
memory means the import does not grow with the file.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--pg")
    args = ap.parse_args()
    from conftest import create_database, drop_database
    from factories import SETUP, make_entry_study

    from audit_trail.service import Ledger
    from edc import keyring
    from edc.db import make_engine, session_factory
    from studies.entry import bulk_import

    tmp = Path(tempfile.mkdtemp(prefix="edc-import-bench-"))
    url = create_database(tmp, args.pg)  # a temporary database; dropped at the end
    keyring.create(tmp / "keys", origin="bench.hospital/ledger")
    engine = make_engine(url)
    ledger = Ledger(signer=keyring.load(tmp / "keys").signer)
    subjects = [f"S01-I{n:05d}" for n in range(max(1, (args.rows + 9999) // 10_000))]
    with session_factory(engine)() as session, session.begin():
        make_entry_study(session, ledger, "IMPORT-01", subjects=tuple(subjects))
    path = tmp / "data.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("record_id,redcap_event_name,redcap_repeat_instance,visit_date,height,weight,"
                 "sbp,smoker,symptoms___1,symptoms___2\n")
        for n in range(args.rows):
            s, rep = subjects[n // 10_000], n % 10_000 + 1
            fh.write(f"{s},followup_arm_1,{rep},2026-05-01,{150 + n % 50},{50 + n % 40}.5,"
                     f"{90 + n % 80},0,{n % 2},0\n")
    print(f"{url.split('@')[-1]}: {args.rows} rows, {path.stat().st_size / 1e6:.1f} MB",
          flush=True)
    samples: list[tuple[int, float]] = []
    t0 = time.perf_counter()

    def progress(rows: int) -> None:
        samples.append((rows, rss_mb()))
        if rows % 10_000 == 0:
            print(f"  {rows} rows, {rows / (time.perf_counter() - t0):.0f} rows/s, "
                  f"RSS {samples[-1][1]:.0f} MB", flush=True)

    with session_factory(engine)() as session, session.begin(), \
            path.open(encoding="utf-8") as fh:
        out = bulk_import.import_redcap_csv(session, ledger, actor=SETUP,
                                            study_code="IMPORT-01", lines=fh,
                                            progress=progress)
    took = time.perf_counter() - t0
    first = next((m for r, m in samples if r >= 10_000), samples[0][1])
    print(f"imported {out['records']} records, {out['values']} values in {took:.0f} s "
          f"({out['rows'] / took:.0f} rows/s); RSS at 10,000 rows {first:.0f} MB, peak "
          f"{max(m for _, m in samples):.0f} MB, at the end {samples[-1][1]:.0f} MB")
    engine.dispose()
    drop_database(url, args.pg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
