"""What the command groups share: the one-line error, the application state, output to a
file or standard output, and the acting account."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edc.settings import Settings
from edc.state import AppState, build_state

Command = Callable[[Settings, argparse.Namespace], int]


class CliError(Exception):
    pass


# Every state a command loaded, so that its end can seal what it appended (``seal``).
_LOADED: list[AppState] = []


def load_state(settings: Settings) -> AppState:
    state = build_state(settings)
    _LOADED.append(state)
    return state


def register_state(state: AppState) -> None:
    """A state built by hand (not by ``load_state``) whose appends ``seal`` must sign."""
    _LOADED.append(state)


def witness_clients(settings: Settings) -> list[Any]:
    from edc.jobs.checkpoints import WitnessClient
    from edc.settings import parse_witnesses

    return [WitnessClient(url, vkey) for url, vkey in parse_witnesses(settings.witnesses)]


def seal() -> None:
    """The end of every command: if it appended to the ledger, sign a checkpoint of the new
    head and submit it to the configured witnesses (one line each on stderr)."""
    from edc.jobs.checkpoints import checkpoint_now, submit

    while _LOADED:
        state = _LOADED.pop()
        if not state.ledger.appended:
            continue
        state.ledger.appended = False
        checkpoint_now(state.sessions, state.ledger, reason="command")
        clients = witness_clients(state.settings)
        for line in submit(state.sessions, clients) if clients else []:
            print(line, file=sys.stderr)


def add(parent: Any, name: str, fn: Command, help_: str) -> argparse.ArgumentParser:
    """A subcommand ``name`` of ``parent`` (a subparsers action) that runs ``fn``."""
    sp: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
    sp.set_defaults(fn=fn)
    return sp


def write_out(out: str | None, text: str) -> None:
    if out:
        Path(out).write_text(text)
    else:
        sys.stdout.write(text)


def custodian(session: Any, username: str) -> Any:
    from studies.accounts.service import actor_for, find_user

    user = find_user(session, username)
    if user is None:
        raise CliError(f"no account named {username!r}")
    return actor_for(session, user, client="cli")
