"""Ledger benchmarks (issue 2). Run: `make bench` or
`.venv/bin/python bench/ledger_bench.py [--db URL] [--entries 1000000] [--appends 5000]`.

1. Chained append vs plain insert of the same rows in the same transaction pattern
   (one entry per transaction, as a request does; and 100 per transaction): rates and ratio.
   Goal: chained >= 0.5 x plain.
2. `verify` over N entries vs only reading the same rows (every hashed column, through
   SQLAlchemy), in one process and as `edc audit verify` runs by default: rates and
   ratio. Goal: verify >= 0.5 x read-only.
Each database is a fresh one made for the run (a temporary SQLite file; a temporary PostgreSQL
database when --pg URL is given).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nacl.signing import SigningKey
from sqlalchemy import Column, MetaData, Table, insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import create_database, drop_database  # noqa: E402

from audit_trail import merkle  # noqa: E402
from audit_trail.service import (  # noqa: E402
    ENTRY_TABLE,
    HASHED_FIELDS,
    Change,
    CheckpointSigner,
    Ledger,
    canonical_json,
    canonical_ts,
    encode_entry,
    iter_rows,
    verify,
)
from edc.audit import default_jobs, verify_ledger  # noqa: E402
from edc.db import make_engine, session_factory  # noqa: E402


def plain_table(engine: object) -> Table:
    md = MetaData()
    cols = [Column(c.name, c.type, primary_key=c.primary_key) for c in ENTRY_TABLE.columns]
    t = Table("ledger_plain", md, *cols)
    md.create_all(engine)  # type: ignore[arg-type]
    return t


def row(i: int) -> dict[str, object]:
    return dict(actor=f"user{i % 7}", action="form.save", entity_type="form",
                entity_id=f"F{i}", study="DEMO", subject=f"S01-{i:05d}", version=i,
                reason="initial entry", changes=[Change("weight", None, 60 + i % 40)])


def bench_append(url: str, n: int, per_tx: int) -> tuple[float, float]:
    engine = make_engine(url)
    sessions = session_factory(engine)
    ledger = Ledger(signer=CheckpointSigner("bench/ledger", SigningKey.generate()))
    plain = plain_table(engine)
    start_seq = 10_000_000
    t0 = time.perf_counter()
    for b in range(0, n, per_tx):
        with sessions() as s, s.begin():
            for i in range(b, min(n, b + per_tx)):
                ledger.append(s, **row(i))  # type: ignore[arg-type]
    chained = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in range(0, n, per_tx):
        with sessions() as s, s.begin():
            for i in range(b, min(n, b + per_tx)):
                r = row(i)
                changes = r.pop("changes")
                s.execute(insert(plain), dict(
                    seq=start_seq + i, ts=canonical_ts(dt.datetime.now(dt.UTC)),
                    outcome="success", client=None, redacted=False,
                    changes=canonical_json([c.__dict__ for c in changes]),  # type: ignore[attr-defined]
                    leaf_hash=b"", prev_hash=b"", **r))
    plain_rate = n / (time.perf_counter() - t0)
    engine.dispose()
    return chained, plain_rate


def bulk_fill(url: str, n: int, signer: CheckpointSigner) -> None:
    """Set-up only (not timed): N valid entries written in large batches."""
    engine = make_engine(url)
    ledger = Ledger(signer=signer)
    prev = b"\x00" * 32
    ts = canonical_ts(dt.datetime.now(dt.UTC))
    batch = 20_000
    with engine.begin() as conn:
        for b in range(0, n, batch):
            rows = []
            for i in range(b, min(n, b + batch)):
                r = row(i)
                changes = canonical_json([c.__dict__ for c in r.pop("changes")])  # type: ignore[attr-defined]
                values = (i + 1, prev, ts, r["actor"], r["action"], r["entity_type"],
                          r["entity_id"], r["study"], r["subject"], r["version"], "success", None,
                          r["reason"], changes)
                leaf = merkle.leaf_hash(encode_entry(values))
                d = dict(zip(HASHED_FIELDS, values, strict=True))
                d.update(redacted=False, leaf_hash=leaf)
                rows.append(d)
                prev = leaf
            conn.execute(insert(ENTRY_TABLE), rows)
    with session_factory(engine)() as s, s.begin():
        ledger.checkpoint(s, reason="bench")
    engine.dispose()


def bench_verify(url: str, n: int, runs: int = 3) -> tuple[float, float, float]:
    """Median rates of: read-only, verify in one process, verify on all cores (edc audit verify)."""
    signer = CheckpointSigner("bench/ledger", SigningKey.generate())
    bulk_fill(url, n, signer)
    engine = make_engine(url)
    sessions = session_factory(engine)
    reads, singles, parallels = [], [], []
    with sessions() as s:  # warm the cache
        sum(1 for _ in iter_rows(s))
    for _ in range(runs):  # alternate, so background load falls on all three alike
        with sessions() as s:
            t0 = time.perf_counter()
            count = sum(1 for _ in iter_rows(s))
            reads.append(count / (time.perf_counter() - t0))
        with sessions() as s:
            t0 = time.perf_counter()
            report = verify(s, vkey=signer.vkey)
            singles.append(report.entries / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        report = verify_ledger(url, vkey=signer.vkey)  # as `edc audit verify` runs
        parallels.append(report.entries / (time.perf_counter() - t0))
        assert count == report.entries == n
    engine.dispose()
    return statistics.median(reads), statistics.median(singles), statistics.median(parallels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", help="PostgreSQL URL to also benchmark (a temporary database)")
    ap.add_argument("--runs", type=int, default=3, help="median of this many verify runs")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--appends", type=int, default=3000)
    args = ap.parse_args()
    kinds = ["sqlite"] + (["postgresql"] if args.pg else [])
    print(f"{'database':11} {'measure':34} {'ours/s':>10} {'baseline/s':>11} {'ratio':>6} goal")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            pg = args.pg if kind == "postgresql" else None
            for per_tx in (1, 100):
                url = create_database(Path(tmp), pg)
                chained, plain = bench_append(url, args.appends, per_tx)
                drop_database(url, pg)
                print(f"{kind:11} {f'append, {per_tx}/transaction vs plain insert':34} "
                      f"{chained:10.0f} {plain:11.0f} {chained / plain:6.2f} >=0.5", flush=True)
            url = create_database(Path(tmp), pg)
            read, single, par = bench_verify(url, args.entries)
            drop_database(url, pg)
            print(f"{kind:11} {f'verify {args.entries:,}, 1 process':34} {single:10.0f} "
                  f"{read:11.0f} {single / read:6.2f}", flush=True)
            print(f"{kind:11} {f'edc audit verify {args.entries:,}, {default_jobs()} jobs':34} "
                  f"{par:10.0f} {read:11.0f} {par / read:6.2f} >=0.5", flush=True)


if __name__ == "__main__":
    main()
