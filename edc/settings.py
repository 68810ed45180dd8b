"""The one settings class. Every setting is read from the environment with the ``EDC_`` prefix
and listed in the README's table (a test checks that the two agree)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from edc.db import PG_POOL_SIZE, ROOT
from studies.accounts.config import parse_networks
from studies.entry.files import KNOWN_TYPES, FileLimits

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
    request_slots: int = Field(
        default=1, ge=1, le=PG_POOL_SIZE, description="PostgreSQL: how many requests of one "
        "web process hold a database transaction at once (the others wait their turn in the "
        "event loop). One is fastest with the database nearby: each more costs CPU in thread "
        "switches; run one web process per core (--workers) and raise this only for a "
        "database whose round trips are slow. SQLite: always one writer and 4 readers"
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
    upload_dir: Path = Field(
        default=DEFAULT_VAR / "uploads",
        description="Where the files of eCRF file fields are kept, named by SHA-256 (0600)",
    )
    upload_max_bytes: int = Field(
        default=10_000_000, ge=1, le=1_000_000_000,
        description="Largest file an eCRF file field takes, in bytes",
    )
    upload_types: str = Field(
        default="application/pdf,image/png,image/jpeg",
        description="Types an eCRF file field takes, comma-separated (read from the file's "
                    "first bytes): any of application/pdf, image/png, image/jpeg, text/plain",
    )
    serve_jobs: bool = Field(
        default=True, description="Run a job runner (extract builds, checkpoints, sweeps, "
        "backups) inside each `edc serve` process; false when `edc worker` processes run them "
        "(PostgreSQL)",
    )
    job_lease_seconds: int = Field(
        default=30, ge=2, le=3600,
        description="How long a job runner's claim lasts without a heartbeat; a job whose "
        "runner died is retried after this",
    )
    sweep_seconds: int = Field(
        default=300, ge=10, le=86400,
        description="Queue a sweep (end expired sessions, prune login throttles and finished "
        "jobs) this often",
    )
    backup_dir: Path | None = Field(
        default=None,
        description="Directory the job runner writes scheduled encrypted backups into; unset: "
        "no scheduled backups (`edc backup` still works)",
    )
    backup_hours: int = Field(
        default=24, ge=1, le=24 * 31, description="Hours between scheduled backups",
    )
    backup_recipient: str = Field(
        default="",
        description="The offline age public key (age1…) scheduled backups are encrypted to; "
        "required with EDC_BACKUP_DIR",
    )
    assets_dir: Path = Field(
        default=ROOT / "node_modules",
        description="Where the npm set-up installed front-end packages (htmx.org, "
                    "swagger-ui-dist); by default the checkout's, wherever the server is "
                    "started from",
    )
    display_timezone: str = Field(
        default="Asia/Shanghai",
        description="The time zone pages show times in (IANA name); the API stays in UTC",
    )
    read_audit_flush_seconds: float = Field(
        default=1.0, gt=0, le=60,
        description="Views of clinical data are buffered and written to the ledger in one "
        "transaction at most this many seconds later (a crash loses at most this window)",
    )
    read_audit_batch: int = Field(
        default=500, ge=1, le=100_000,
        description="Write the buffered views at once when this many are waiting",
    )
    working_hours: str = Field(
        default="08:00-18:00",
        description="Working hours in the display time zone (HH:MM-HH:MM); access outside "
        "them is flagged as abnormal (§11.1.2.4). Empty: no out-of-hours rule",
    )
    working_days: str = Field(
        default="1,2,3,4,5",
        description="Working days, ISO weekday numbers (Monday = 1); access on other days "
        "is flagged as out of hours",
    )
    bulk_read_subjects: int = Field(
        default=50, ge=2, description="Flag a user who views this many different subjects "
        "within EDC_BULK_READ_MINUTES (bulk reads)",
    )
    bulk_read_minutes: int = Field(
        default=10, ge=1, description="The window of the bulk-read rule, in minutes",
    )
    refusal_flag_count: int = Field(
        default=5, ge=2, description="Flag a user refused this many times within "
        "EDC_REFUSAL_FLAG_MINUTES (repeated refusals)",
    )
    refusal_flag_minutes: int = Field(
        default=10, ge=1, description="The window of the repeated-refusals rule, in minutes",
    )
    idle_blank_seconds: int = Field(
        default=300, ge=0, description="Pages blank their content after this many seconds "
        "without input (0: never); without JavaScript the idle session timeout applies",
    )
    unmask_grant_max_hours: int = Field(
        default=72, ge=1, le=24 * 90,
        description="The longest an unmask grant for level-5 data may last (§6.2 e)",
    )

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        from studies.oversight.service import parse_hours

        parse_hours(v)
        return v

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: str) -> str:
        from studies.oversight.service import parse_days

        parse_days(v)
        return v

    @field_validator("upload_types")
    @classmethod
    def _upload_types(cls, v: str) -> str:
        types = [t.strip() for t in v.split(",") if t.strip()]
        unknown = [t for t in types if t not in KNOWN_TYPES]
        if not types or unknown:
            raise ValueError(f"EDC_UPLOAD_TYPES: name some of {', '.join(KNOWN_TYPES)}"
                             + (f" (not {', '.join(unknown)})" if unknown else ""))
        return ",".join(types)

    def file_limits(self) -> FileLimits:
        return FileLimits(max_bytes=self.upload_max_bytes,
                          types=tuple(self.upload_types.split(",")), store=self.upload_dir)

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
    def _backup_needs_recipient(self) -> Settings:
        if self.backup_dir is not None and not self.backup_recipient.strip().startswith("age1"):
            raise ValueError("EDC_BACKUP_DIR needs EDC_BACKUP_RECIPIENT, an age public key "
                             "(age1…)")
        return self

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
