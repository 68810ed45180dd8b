"""The one settings class. Every setting is read from the environment with the ``EDC_`` prefix
and listed in the README's table (a test checks that the two agree)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    assets_dir: Path = Field(
        default=Path("node_modules"),
        description="Where the npm set-up installed front-end packages (htmx.org)",
    )


def get_settings() -> Settings:
    return Settings()
