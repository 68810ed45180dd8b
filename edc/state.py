"""What the running application holds: settings, engine, keys and the ledger writer.

Built once at start-up (``edc serve``, ``edc`` commands, tests) and passed down; domain code
receives the pieces it needs as arguments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit_trail.service import Ledger
from edc import keyring
from edc.db import check_schema, make_engine, session_factory
from edc.settings import Settings
from studies.accounts.config import AuthConfig, parse_networks
from studies.accounts.ratelimit import RateLimiter


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    keys: keyring.Keyring
    ledger: Ledger
    login_limiter: RateLimiter | None = field(default=None)

    def __post_init__(self) -> None:
        if self.login_limiter is None:
            self.login_limiter = RateLimiter(per_account=self.settings.login_rate_per_account,
                                             per_client=self.settings.login_rate_per_client)

    @property
    def auth(self) -> AuthConfig:
        """The authentication policy the deployment chose, for the accounts domain."""
        s = self.settings
        return AuthConfig(
            password_min_length=s.password_min_length,
            password_require_classes=s.password_require_classes,
            password_max_age_days=s.password_max_age_days,
            lockout_threshold=s.lockout_threshold,
            lockout_window=dt.timedelta(minutes=s.lockout_window_minutes),
            lockout_duration=dt.timedelta(minutes=s.lockout_minutes),
            hospital_networks=parse_networks(s.hospital_networks),
            second_factor_enforced=s.second_factor_enforced,
            totp_key=self.keys.session_key,
            idle_timeout=dt.timedelta(minutes=s.idle_timeout_minutes),
            session_lifetime=dt.timedelta(hours=s.session_lifetime_hours),
            api_token_max_days=s.api_token_max_days,
        )


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
