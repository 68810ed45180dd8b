"""``edc keys``: rotate the code-index key, show the keys in use, export the signing public
key (issue 4; docs/code-index.md)."""

from __future__ import annotations

import argparse
from typing import Any

from edc import keyring
from edc.cli.common import CliError, add, custodian, load_state
from edc.settings import Settings
from edc.state import AppState
from studies.subjects import code_index


def cmd_keys_rotate_code_index(settings: Settings, args: argparse.Namespace) -> int:
    """Stage a new key, re-encrypt the whole index in ONE transaction, promote the key, then
    prove with the key directory as it now is that every entry decrypts under the new key."""
    import datetime as dt

    from studies.subjects import service as subjects

    state = load_state(settings)
    with state.sessions() as session:
        for line in keyring.recover_code_index_rotation(settings.key_dir,
                                                        set(code_index.key_usage(session))):
            print(line)
    keys = keyring.load(settings.key_dir)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    staged = keyring.stage_code_index_rotation(settings.key_dir, stamp=stamp)
    try:
        with state.sessions() as session, session.begin():
            actor = custodian(session, args.by)
            report = code_index.rotate_code_index(session, state.ledger, actor=actor,
                                                keys=keys.code_index_keys(),
                                                new_key=staged.new_key, client="cli")
    except BaseException:
        _settle_rotation(state, staged)
        raise
    keyring.promote_code_index_key(staged)
    after = keyring.load(settings.key_dir)
    only_new = subjects.CodeIndexKeys(current=after.code_index_key, blind=after.blind_index_key)
    with state.sessions() as session:
        check = code_index.verify_code_index(session, keys=only_new)
    if check.entries != report.entries or set(check.by_key) - {only_new.current_id}:
        raise CliError("verification after rotation failed; keep every key file and restore "
                       "from backup")
    print(f"re-encrypted {report.entries} code-index entries under key {report.new_key_id} "
          f"(was {', '.join(report.old_key_ids) or 'none'}); all {check.entries} verified to "
          f"decrypt under the new key. Old key kept as {staged.retired.name}; back up the key "
          "directory now.")
    return 0


def _settle_rotation(state: AppState, staged: keyring.StagedRotation) -> None:
    """After a failed rotation: drop the staged key if the transaction did not commit (the
    usual case), promote it if it did. If the database cannot be asked, leave both files:
    ``load()`` reads them, so the index stays readable, and the next rotation settles them."""
    from studies.subjects.crypto import key_id

    try:
        with state.sessions() as session:
            used = set(code_index.key_usage(session))
    except Exception:
        return
    if key_id(staged.new_key) in used:
        keyring.promote_code_index_key(staged)
    else:
        keyring.abandon_code_index_rotation(staged)


def cmd_keys_status(settings: Settings, _args: argparse.Namespace) -> int:
    """Which code-index keys the directory holds and how many entries each encrypts."""
    from studies.subjects.crypto import key_id

    state = load_state(settings)
    with state.sessions() as session:
        usage = code_index.key_usage(session)
    files = [(keyring.CODE_INDEX, state.keys.code_index_key)] + [
        (p.name, k) for p, k in keyring.older_code_index_keys(settings.key_dir)]
    for name, key in files:
        kid = key_id(key)
        print(f"{name:60} key id {kid}  entries {usage.pop(kid, 0)}")
    for kid, n in usage.items():
        print(f"MISSING key id {kid}: {n} entries cannot be decrypted; restore it from backup")
    return 1 if usage else 0


def cmd_keys_export_signing_pub(settings: Settings, args: argparse.Namespace) -> int:
    """The hospital's public key in minisign format, for sponsors (minisign -p)."""
    from pathlib import Path

    from studies.extracts import package as pkg

    keys = keyring.load(settings.key_dir)
    text = pkg.public_key_text(keys.signing_key)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text, end="")
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage the code-index keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kr = add(ksub, "rotate-code-index", cmd_keys_rotate_code_index,
             "re-encrypt the whole code index under a new key and retire the old one")
    kr.add_argument("--by", required=True, help="the code-index custodian's username")
    add(ksub, "status", cmd_keys_status, "code-index keys in the key directory and their use")
    ks = add(ksub, "export-signing-pub", cmd_keys_export_signing_pub,
             "write the hospital's public key in minisign format (for sponsors)")
    ks.add_argument("--out")
