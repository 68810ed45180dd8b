"""The one settings class. Every setting is read from the environment with the ``EDC_`` prefix
and listed in the README's table (a test checks that the two agree)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from studies.accounts.config import parse_networks

DEFAULT_VAR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDC_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR / 'edc.sqlite3'}",
        description="SQLAlchemy URL; SQLite file (default) or postgresql+psycopg://…",
    )
    key_dir: Path = Field(
        default=DEFAULT_VAR / "keys",
        description="Directory holding the signing key and other secrets, outside the database",
    )
    environment: str = Field(
        default="development",
        description="development or production; production refuses demo data and default secrets",
    )
    ledger_origin: str = Field(
        default="edc.hospital.local/ledger",
        description="Origin line of checkpoints; fixed when the key directory is created",
    )
    checkpoint_every: int = Field(
        default=1000, ge=1, description="Write a signed ledger checkpoint every N entries"
    )
    idle_timeout_minutes: int = Field(
        default=10, ge=1, description="Idle session timeout in minutes (§11.1.2.4)"
    )
    session_lifetime_hours: int = Field(
        default=12, ge=1, description="Absolute session lifetime in hours"
    )
    secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure (set true behind HTTPS)"
    )
    max_body_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest request body accepted"
    )
    password_min_length: int = Field(
        default=12, ge=8, le=64, description="Minimum password length (ASVS 5.0: 12)"
    )
    password_require_classes: bool = Field(
        default=False, description="Require 3 of 4 character classes (off: ASVS 5.0; on where "
        "a 等级保护 assessment requires it)"
    )
    password_max_age_days: int = Field(
        default=0, ge=0, description="Force a password change after N days (0: never)"
    )
    lockout_threshold: int = Field(
        default=5, ge=1, description="Failed logins within the window that lock an account"
    )
    lockout_window_minutes: int = Field(
        default=15, ge=1, description="Window in which failed logins are counted"
    )
    lockout_minutes: int = Field(
        default=15, ge=1, description="How long a lockout lasts unless an administrator unlocks"
    )
    login_rate_per_account: int = Field(
        default=10, ge=1, description="Login attempts per minute per username"
    )
    login_rate_per_client: int = Field(
        default=30, ge=1, description="Login attempts per minute per client address"
    )
    hospital_networks: str = Field(
        default="127.0.0.0/8,::1/128",
        description="Comma-separated CIDR list of the hospital's networks; logins from "
        "elsewhere need the second factor",
    )
    second_factor_enforced: bool = Field(
        default=True, description="Require TOTP for privileged roles and outside logins "
        "(cannot be false in production)"
    )
    api_token_max_days: int = Field(
        default=90, ge=1, le=3650, description="Longest lifetime of an API token"
    )
    extract_dir: Path = Field(
        default=DEFAULT_VAR / "extracts",
        description="Where encrypted extract packages for sponsors are kept (age files)",
    )
    extract_worker: bool = Field(
        default=True, description="Run the background extract builder inside the web server",
    )
    assets_dir: Path = Field(
        default=Path("node_modules"),
        description="Where the npm set-up installed front-end packages (htmx.org, "
                    "swagger-ui-dist)",
    )
    display_timezone: str = Field(
        default="Asia/Shanghai",
        description="The time zone pages show times in (IANA name); the API stays in UTC",
    )


    @field_validator("display_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not a time zone name: {v!r}") from None
        return v

    @field_validator("hospital_networks")
    @classmethod
    def _networks(cls, v: str) -> str:
        parse_networks(v)
        return v

    @model_validator(mode="after")
    def _production_needs_second_factor(self) -> Settings:
        if self.environment == "production" and not self.second_factor_enforced:
            raise ValueError("EDC_SECOND_FACTOR_ENFORCED cannot be false in production")
        return self


def get_settings() -> Settings:
    return Settings()
