"""Process settings, read from the environment (and a `.env` file when present)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
