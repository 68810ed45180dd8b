"""What the running application holds: settings, engine, keys and the ledger writer.

Built once at start-up (``edc serve``, ``edc`` commands, tests) and passed down; domain code
receives the pieces it needs as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit_trail.service import Ledger
from edc import keyring
from edc.db import check_schema, make_engine, session_factory
from edc.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: keyring.Keyring
    ledger: Ledger


def build_state(settings: Settings, *, engine: Engine | None = None,
                check: bool = True) -> AppState:
    """Open the database and the key directory; raise one-line errors if either is unusable."""
    keys = keyring.load(settings.key_dir)
    engine = engine or make_engine(settings.database_url)
    if check:
        check_schema(engine)
    return AppState(
        settings=settings, engine=engine, sessions=session_factory(engine), keys=keys,
        ledger=Ledger(signer=keys.signer, checkpoint_every=settings.checkpoint_every),
    )
