"""``edc accounts``: the permission table, unlocking an account, resetting a second factor
(issue 6)."""

from __future__ import annotations

import argparse
from typing import Any

from edc.cli.common import CliError, add, load_state, write_out
from edc.settings import Settings


def cmd_accounts_permissions(_settings: Settings, args: argparse.Namespace) -> int:
    from edc.permissions_doc import render

    write_out(args.out, render())
    return 0


def _cli_admin(settings: Settings, args: argparse.Namespace, fn_name: str) -> int:
    from studies.accounts import admin
    from studies.accounts import service as accounts

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        by = accounts.find_user(session, args.by)
        if by is None:
            raise CliError(f"no account named {args.by!r}")
        actor = accounts.actor_for(session, by, client="cli")
        getattr(admin, fn_name)(session, state.ledger, actor=actor, username=args.username)
    print(f"{args.username}: done ({fn_name.replace('_', ' ')})")
    return 0


def cmd_accounts_unlock(settings: Settings, args: argparse.Namespace) -> int:
    return _cli_admin(settings, args, "unlock")


def cmd_accounts_reset_totp(settings: Settings, args: argparse.Namespace) -> int:
    return _cli_admin(settings, args, "reset_second_factor")


def register(sub: Any) -> None:
    acc = sub.add_parser("accounts", help="accounts: permission table, unlock, reset TOTP")
    accsub = acc.add_subparsers(dest="accounts_command", required=True)
    pm = add(accsub, "permissions", cmd_accounts_permissions,
             "render the permission table (docs/permissions.md) from the code")
    pm.add_argument("--out")
    for name, fn, text in (("unlock", cmd_accounts_unlock, "unlock a locked account"),
                           ("reset-second-factor", cmd_accounts_reset_totp,
                            "clear a user's TOTP and recovery codes (lost phone)")):
        ap = add(accsub, name, fn, text)
        ap.add_argument("username")
        ap.add_argument("--by", required=True, help="the administrator's username")
