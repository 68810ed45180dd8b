"""The one settings class. Every setting is read from the environment with the ``EDC_`` prefix
and listed in the README's table (a test checks that the two agree)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from studies.accounts.config import parse_networks

DEFAULT_VAR = Path("var")
DEFAULT_HOSPITAL_NETWORKS = "127.0.0.0/8,::1/128"


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
    checkpoint_seconds: int = Field(
        default=60, ge=1, le=3600,
        description="While the server runs, sign a checkpoint at most this many seconds after "
        "any new ledger entry",
    )
    witnesses: str = Field(
        default="",
        description="Witnesses the checkpoints are submitted to: comma-separated "
        "'<submission URL> <witness verifier key>' pairs",
    )
    idle_timeout_minutes: int = Field(
        default=10, ge=1, description="Idle session timeout in minutes (§11.1.2.4)"
    )
    session_refresh_seconds: int = Field(
        default=30, ge=0, le=300, description="Write a session's last use at most every N "
        "seconds (the idle timeout counts from it); a page view on SQLite writes it in a "
        "transaction of its own, after its read"
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
    hospital_networks: str | None = Field(
        default=None,
        description="Comma-separated CIDR list of the hospital's networks; logins from "
        "elsewhere need the second factor. Unset: 127.0.0.0/8,::1/128 — or none at all when "
        "EDC_TRUSTED_PROXIES is set (the proxy's loopback address is not the hospital)",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDR networks of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto headers are honoured; empty: none (the client "
        "address is the connection's)",
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

    @field_validator("witnesses")
    @classmethod
    def _witnesses(cls, v: str) -> str:
        parse_witnesses(v)
        return v

    @field_validator("hospital_networks", "trusted_proxies")
    @classmethod
    def _networks(cls, v: str | None) -> str | None:
        if v is not None:
            parse_networks(v)
        return v

    @property
    def effective_hospital_networks(self) -> str:
        """The hospital networks in force: as set, else loopback only — and nothing when a
        reverse proxy is trusted, whose own loopback connection says nothing of the client."""
        if self.hospital_networks is not None:
            return self.hospital_networks
        return "" if self.trusted_proxies.strip() else DEFAULT_HOSPITAL_NETWORKS

    @property
    def proxy_hosts(self) -> list[str]:
        """The trusted proxies as uvicorn's ProxyHeadersMiddleware takes them."""
        return [str(n) for n in parse_networks(self.trusted_proxies)]

    @model_validator(mode="after")
    def _production_needs_second_factor(self) -> Settings:
        if self.environment == "production" and not self.second_factor_enforced:
            raise ValueError("EDC_SECOND_FACTOR_ENFORCED cannot be false in production")
        return self


def parse_witnesses(value: str) -> list[tuple[str, str]]:
    """``EDC_WITNESSES`` as (submission URL, witness verifier key) pairs."""
    from audit_trail import note

    out = []
    for item in filter(None, (i.strip() for i in value.split(","))):
        url, _, vkey = item.partition(" ")
        if not url.startswith(("http://", "https://")) or not vkey.strip():
            raise ValueError(f"EDC_WITNESSES: {item!r} is not '<http(s) URL> <verifier key>'")
        try:
            note.parse_verifier_key(vkey.strip(), note.ALG_COSIGNATURE_V1)
        except note.NoteError as exc:
            raise ValueError(f"EDC_WITNESSES: {exc}") from exc
        out.append((url.rstrip("/"), vkey.strip()))
    return out


def get_settings() -> Settings:
    return Settings()
