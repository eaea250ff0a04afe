"""Process settings, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from enum import StrEnum
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


class EnvMode(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class Settings(BaseSettings):
    # Errors never echo the value: URLs and keys here carry credentials; messages name the field.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… ; unset: the embedded Postgres in DATA_DIR",
    )
    redis_url: str | None = Field(
        default=None, description="redis://… ; unset: the embedded redis-server in DATA_DIR"
    )
    redis_prefix: str = Field(
        default="creatordeck", description="namespace of every Redis key and job id we write"
    )
    data_dir: str | None = Field(
        default=None, description="embedded servers' folder; default ~/.local/share/creatordeck"
    )
    env: EnvMode = Field(default=EnvMode.DEV, description="dev | test | prod")
    region_refresh_interval_ms: int = Field(default=300_000, ge=100)
    concurrency: int = Field(default=4, ge=1, le=1000, description="jobs at once per engine")
    pgbouncer: bool = Field(
        default=False, description="behind PgBouncer (transaction mode): no statement cache"
    )
    db_pool_size: int = Field(default=10, ge=1)
    tick_shards: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="tick jobs per fire time (regions split by a hash of their code); "
        "every engine of a deployment must use the same number",
    )
    tick_timeout_s: int = Field(default=300, ge=1, description="a tick's time limit")
    shutdown_grace_s: float = Field(default=25.0, ge=0)
    log_level: str = Field(default="INFO")
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="engine's Prometheus /metrics port; 0 = off"
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address the engine's /metrics listens on: loopback unless opened "
        "(0.0.0.0 in a container that Prometheus scrapes from another)",
    )
    demo_api_port: int = Field(
        default=8000, ge=1, le=65535, description="`creatordeck demo`: the api's port (loopback)"
    )
    demo_mock_port: int = Field(
        default=8765,
        ge=1,
        le=65535,
        description="`creatordeck demo`: the mock platform's port (loopback)",
    )
    encryption_key: SecretStr | None = Field(
        default=None, description="Fernet key for platform tokens at rest"
    )
    dashboard_token: SecretStr | None = Field(default=None)
    # Webhook URLs often carry a token (in the path or the query): secrets, never logged.
    alert_webhook_page: SecretStr | None = Field(
        default=None,
        description="https URL POSTed (JSON) once when a page alert fires and once when it "
        "resolves; unset: no notifications for page alerts",
    )
    alert_webhook_ticket: SecretStr | None = Field(
        default=None, description="as ALERT_WEBHOOK_PAGE, for ticket alerts"
    )

    alert_for_max_s: int | None = Field(
        default=None,
        ge=0,
        description="caps every alert condition's `for` duration in the console and the "
        "engine's webhooks (the demo sets 30); the Prometheus rules keep the table's",
    )
    api_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="uvicorn processes of `creatordeck api`; 0 = one per CPU core available",
    )
    event_retention_days: int = Field(
        default=90,
        ge=0,
        description="days of raw events kept (whole daily partitions are dropped); 0 = for ever",
    )
    sample_retention_days: int = Field(
        default=730,
        ge=0,
        description="days of follower samples kept (whole monthly partitions are dropped); "
        "0 = for ever",
    )

    @field_validator("alert_webhook_page", "alert_webhook_ticket", mode="before")
    @classmethod
    def _empty_webhook(cls, value: object) -> object:
        return None if value == "" else value  # `ALERT_WEBHOOK_PAGE=` in a .env: off

    @field_validator("alert_webhook_page", "alert_webhook_ticket")
    @classmethod
    def _webhook(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # The message never repeats the URL: it is a secret (pydantic shows a SecretStr masked).
        if value is not None:
            problem = _webhook_problem(value.get_secret_value())
            if problem:
                raise ValueError(f"{(info.field_name or '').upper()}: {problem}")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _metrics_host(cls, value: str) -> str:
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(value))
        if not _HOST_NAME.fullmatch(value):
            raise ValueError(
                f"METRICS_HOST {value!r} is not an IP address or host name "
                "(e.g. 127.0.0.1, or 0.0.0.0 to listen on every interface; no port, no scheme)"
            )
        return value


def _webhook_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None. Plain http only to this machine: the URL's token
    and the alert would cross the network in clear text."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "not a URL (expected https://host/path)"
    if parts.scheme not in ("https", "http") or not host:
        return "not an http(s) URL with a host (expected https://host/path)"
    if parts.scheme == "http" and host not in ("localhost", "127.0.0.1", "::1"):
        return "must be https:// (plain http only to localhost / 127.0.0.1 / ::1)"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
