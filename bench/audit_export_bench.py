"""Memory of a streamed audit-trail export: fills a SQLite ledger with N entries (default
1,000,000; set N=... to change) and exports it as CSV and as ODM, measuring peak Python
memory (tracemalloc) and resident set size while consuming the stream.

    .venv/bin/python bench/audit_export_bench.py            # 1M entries, ~several minutes
    N=100000 .venv/bin/python bench/audit_export_bench.py

Expect the peak to stay flat (one batch of 5,000 rows) whatever N is. Measured on the 2-core
development machine (SQLite, under tracemalloc, which slows Python about threefold):

    N=20,000   csv 3 MB  peak 13.0 MB | odm 9 MB   peak 13.4 MB
    N=200,000  csv 31 MB peak 13.1 MB | odm 85 MB  peak 13.4 MB  (csv 15.6 s, odm 51 s)
    N=1,000,000 csv 156 MB peak 13.1 MB | odm 428 MB peak 13.4 MB (csv 35 s, odm 154 s);
                max RSS 190 MB, reached while filling the table, not while exporting
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import insert

from audit_trail.models import LedgerEntry
from edc import keyring
from edc.db import make_engine, session_factory
from edc.state import AppState
from studies.accounts import audit
from studies.kernel.actor import Actor
from studies.kernel.roles import Role

OFFSET = 10**12  # bulk rows above the real chain, which the export's own entry extends


def main() -> None:
    n = int(os.environ.get("N", "1000000"))
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    from edc.cli import main as cli

    os.environ["EDC_DATABASE_URL"], os.environ["EDC_KEY_DIR"] = url, str(tmp / "keys")
    cli(["init"])
    keys = keyring.load(tmp / "keys")
    engine = make_engine(url)
    # Bulk rows (not hash-chained: this measures the export, not the ledger's writer).
    t = time.perf_counter()
    with engine.begin() as conn:
        batch = []
        for i in range(1, n + 1):
            batch.append(dict(seq=OFFSET + i, ts=f"2026-11-28T00:00:00.{i % 1000000:06d}Z",
                              actor=f"user{i % 50}", action="form.save", entity_type="form",
                              entity_id=str(i), study="S1", subject=f"S1-{i % 900:03d}",
                              version=1, outcome="success", client="10.0.0.1", reason=None,
                              changes='[{"after":"x","before":null,"field":"f"}]',
                              redacted=False, leaf_hash=b"\0" * 32, prev_hash=b"\0" * 32,
                              hash=b"\0" * 32))
            if len(batch) == 50_000:
                conn.execute(insert(LedgerEntry.__table__), batch)  # type: ignore[attr-defined]
                batch = []
        if batch:
            conn.execute(insert(LedgerEntry.__table__), batch)  # type: ignore[attr-defined]
    print(f"filled {n:,} entries in {time.perf_counter() - t:.1f}s")
    from audit_trail.service import Ledger

    state = AppState(settings=None, engine=engine, sessions=session_factory(engine),  # type: ignore[arg-type]
                     keys=keys, ledger=Ledger(signer=keys.signer), login_limiter=object())  # type: ignore[arg-type]
    actor = Actor(user_id="b", username="bench", display_name="Bench",
                  grants=((Role.AUDITOR, None),))
    for fmt in ("csv", "odm"):
        with state.sessions() as session:
            tracemalloc.start()
            t = time.perf_counter()
            total = 0
            for chunk in audit.export(session, state.ledger, actor=actor,
                                      filters=audit.AuditFilter(), fmt=fmt):
                total += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            session.rollback()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{fmt}: {total / 1e6:.0f} MB streamed in {time.perf_counter() - t:.1f}s; "
              f"peak traced memory {peak / 1e6:.1f} MB; max RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
