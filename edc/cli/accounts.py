"""``edc accounts``: the permission table, unlocking an account, resetting a second factor
(issue 6); registering recipient organisations and affiliating accounts (issue 14)."""

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


def _as_admin(settings: Settings, by: str, fn: Any) -> Any:
    from studies.accounts import service as accounts

    state = load_state(settings)
    with state.sessions() as session, session.begin():
        user = accounts.find_user(session, by)
        if user is None:
            raise CliError(f"no account named {by!r}")
        return fn(session, state.ledger, accounts.actor_for(session, user, client="cli"))


def cmd_accounts_org_add(settings: Settings, args: argparse.Namespace) -> int:
    from studies.accounts import organisations as orgs

    label = _as_admin(settings, args.by, lambda session, ledger, actor: orgs.register_organisation(
        session, ledger, actor=actor, code=args.code, name_zh=args.name_zh,
        name_en=args.name_en, kind=args.kind, country=args.country).label)
    print(f"{args.code}: registered ({label})")
    return 0


def cmd_accounts_orgs(settings: Settings, _args: argparse.Namespace) -> int:
    from studies.accounts import organisations as orgs

    state = load_state(settings)
    with state.sessions() as session:
        for o in orgs.list_organisations(session):
            members = ", ".join(orgs.members_of(session, o.id)) or "-"
            print(f"{o.code}\t{o.kind}\t{o.country}\t{o.label}\t{members}")
    return 0


def cmd_accounts_affiliate(settings: Settings, args: argparse.Namespace) -> int:
    from studies.accounts import organisations as orgs

    _as_admin(settings, args.by, lambda session, ledger, actor: orgs.affiliate(
        session, ledger, actor=actor, username=args.username,
        organisation=args.organisation or None))
    print(f"{args.username}: {args.organisation or 'no organisation'}")
    return 0


def cmd_accounts_end_date(settings: Settings, args: argparse.Namespace) -> int:
    from studies.accounts import admin

    end = admin.parse_end_date(args.end_date)
    _as_admin(settings, args.by, lambda session, ledger, actor: admin.set_end_date(
        session, ledger, actor=actor, username=args.username, end_date=end))
    print(f"{args.username}: " + (f"ends after {end}" if end else "no end date"))
    return 0


def register(sub: Any) -> None:
    acc = sub.add_parser("accounts", help="accounts: permission table, unlock, reset TOTP, "
                         "organisations")
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
    ed = add(accsub, "end-date", cmd_accounts_end_date,
             "set the last day an account may be used (§11.3.2); '' clears it")
    ed.add_argument("username")
    ed.add_argument("end_date", help="YYYY-MM-DD, or '' for no end date")
    ed.add_argument("--by", required=True, help="the administrator's username")
    og = add(accsub, "org-add", cmd_accounts_org_add,
             "register a recipient organisation (§11.3.4.6, §7 p)")
    og.add_argument("code", help="what extract requests name, e.g. demo-pharma")
    og.add_argument("--name-zh", required=True)
    og.add_argument("--name-en", required=True)
    og.add_argument("--kind", required=True,
                    help="hospital, institution, company or government")
    og.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. CN")
    og.add_argument("--by", required=True, help="the administrator's username")
    add(accsub, "orgs", cmd_accounts_orgs,
        "list the registered organisations: code, kind, country, name, accounts")
    af = add(accsub, "affiliate", cmd_accounts_affiliate,
             "make an account belong to an organisation (at most one)")
    af.add_argument("username")
    af.add_argument("organisation", nargs="?", default="",
                    help="its code or id; omit for no organisation")
    af.add_argument("--by", required=True, help="the administrator's username")
