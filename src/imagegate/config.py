"""Process settings: one object built from ``IMAGEGATE_*`` environment variables.

Providers and models come from the TOML file named by ``config`` (see ``imagegate.catalog``);
everything else is here, validated at start with errors that name the variable.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
# Database URL schemes as people write them -> the async driver the store runs on.
_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``90``, ``30s``, ``15m``, ``12h``, ``7d``."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30s, 15m, 12h or 7d, got {value!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]
# What an acknowledged task and a stored file survive: a process crash (kill -9), or also an
# OS crash or power loss (an fsync per commit and per file). See docs/durability.md.
Durability = Literal["crash", "power"]


def parse_latency(value: str) -> tuple[float, float]:
    """``"2"`` means exactly 2 s; ``"1-3"`` a uniform range."""
    low, _, high = str(value).partition("-")
    lo = float(low)
    hi = float(high) if high else lo
    if lo < 0 or hi < lo:
        raise ValueError(f"expected seconds or a range like 1-3, got {value!r}")
    return lo, hi


class Settings(BaseSettings):
    """Everything a gateway process needs to know, from ``IMAGEGATE_*`` variables."""

    # Inputs are left out of errors: a bad key or database URL is printed at start, and
    # either may hold a secret.
    model_config = SettingsConfigDict(
        env_prefix="IMAGEGATE_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("imagegate-data")
    database_url: str | None = None
    storage_url: str | None = Field(
        default=None, description="s3://bucket/prefix for S3; default: files under data_dir"
    )
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    config: Path | None = None
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    secret_key: str | None = None
    public_url: str | None = None

    sync_timeout: Duration = 60.0
    retention: Duration = 7 * 86400.0
    url_ttl: Duration = 3600.0
    poll_after: int = Field(default=3, ge=1, le=60)
    default_deadline: Duration = 600.0
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    worker_concurrency: int = Field(default=64, ge=1, le=100_000)
    worker_poll_interval: Duration = 1.0
    lease: Duration = 30.0
    shutdown_grace: Duration = 30.0  # on SIGTERM, how long in-hand tasks may run before release
    sweep_interval: Duration = 60.0
    durability: Durability = "crash"

    local_latency: str = "0"
    local_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    log_level: str = "info"

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if not key.startswith("sk-") or len(key) < 8:
                raise ValueError("every key must start with 'sk-' and be at least 8 characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        """``postgresql://`` (as libpq and most tools write it) means asyncpg; a URL naming a
        driver the store does not run on fails at start, not with an import error later."""
        if not value:
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in _DRIVERS:
            raise ValueError(
                "expected a postgresql:// (or postgresql+asyncpg://) or sqlite:/// URL, "
                f"got one starting {scheme + sep!r}"
            )
        return f"{_DRIVERS[scheme]}://{rest}"

    @field_validator("local_latency")
    @classmethod
    def _check_latency(cls, value: str) -> str:
        parse_latency(value)
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imagegate.db').resolve()}"

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def signing_secret(self) -> bytes:
        """The URL-signing secret: configured, else generated once and kept in the data dir.

        A fleet must share ``IMAGEGATE_SECRET_KEY``; a single process can rely on the file.
        """
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()
