"""A ledger writer run as its own process by the concurrency and crash tests.

Usage: python writer.py DB_URL KEY_DIR WRITER_ID COUNT BATCH
Prints ``ack <seq> <entity_id>`` after each committed transaction, one line per entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from audit_trail.service import Ledger
from edc import keyring
from edc.db import make_engine, session_factory


def main() -> None:
    url, key_dir, writer, count, batch = sys.argv[1:6]
    engine = make_engine(url)
    sessions = session_factory(engine)
    ledger = Ledger(signer=keyring.load(Path(key_dir)).signer, checkpoint_every=500)
    n, total, size = 0, int(count), int(batch)
    while n < total:
        acked = []
        with sessions() as s, s.begin():
            for _ in range(min(size, total - n)):
                eid = f"w{writer}-{n}"
                e = ledger.append(s, actor=f"writer{writer}", action="test.append",
                                  entity_type="test", entity_id=eid)
                acked.append((e.seq, eid))
                n += 1
        for seq, eid in acked:  # only after the commit returned
            sys.stdout.write(f"ack {seq} {eid}\n")
        sys.stdout.flush()
    engine.dispose()


if __name__ == "__main__":
    main()
