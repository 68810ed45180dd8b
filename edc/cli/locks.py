"""``edc locks``: database lock and unlock (issue 7)."""

from __future__ import annotations

import argparse
from typing import Any

from edc.cli.common import add, load_state
from edc.settings import Settings
from studies.locks import unlock as unlocks


def cmd_locks_relock_expired(settings: Settings, _args: argparse.Namespace) -> int:
    """Re-lock every unlock whose period is over (issue 7; safe to run from cron)."""

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        done = unlocks.relock_expired(session, state.ledger)
    print(f"re-locked {len(done)} unlock(s)" + (": " + ", ".join(done) if done else ""))
    return 0


def register(sub: Any) -> None:
    lk = sub.add_parser("locks", help="database lock and unlock (issue 7)")
    lksub = lk.add_subparsers(dest="locks_command", required=True)
    add(lksub, "relock-expired", cmd_locks_relock_expired,
        "re-lock every unlock whose period has ended")
