"""Process settings, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


class EnvMode(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
