"""Creator-tracking settings: batch sizes, concurrency, quotas and platform credentials.

Read from the environment (and `.env`); secrets never come from anywhere else.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    fetch_batch_size: int = Field(
        default=2000, ge=1, le=10_000, description="creators per fetch job (1 = batching off)"
    )
    fetch_concurrency: int = Field(
        default=8, ge=1, le=256, description="API calls at once per platform per engine"
    )
    fetch_jobs: int = Field(default=8, ge=1, le=1000, description="fetch jobs at once per engine")
    fetch_max_tries: int = Field(default=8, ge=1, description="tries of a fetch job (defers)")
    fetch_timeout_s: float = Field(default=10.0, gt=0, description="one API call's timeout")
    sample_slot_s: int = Field(
        default=60, ge=1, description="one follower sample per creator per slot"
    )
    mockstagram_url: str = Field(default="http://127.0.0.1:8765")
    mockstagram_max_batch: int = Field(default=500, ge=1, le=1000, description="ids per call")
    mockstagram_token: SecretStr = Field(default=SecretStr("mock-token"))
    mockstagram_quota: str = Field(default="20000/1", description="calls/seconds per token")
    youtube_api_key: SecretStr | None = None
    youtube_quota: str = Field(default="100/100", description="calls/seconds")
    x_bearer_token: SecretStr | None = None
    x_quota: str = Field(default="300/900", description="calls/seconds (user lookup, app)")
    instagram_access_token: SecretStr | None = None
    instagram_user_id: str | None = Field(
        default=None, description="our Instagram business account id (business discovery)"
    )
    instagram_quota: str = Field(default="200/3600", description="calls/seconds")


@lru_cache(maxsize=1)
def get_tracking_settings() -> TrackingSettings:
    return TrackingSettings()


def parse_quota(text: str) -> tuple[int, int]:
    """ "300/900" → (300 calls, per 900 seconds)."""
    calls, _, seconds = text.partition("/")
    try:
        parsed = int(calls), int(seconds or "1")
    except ValueError as exc:
        raise ValueError(f"quota {text!r} is not CALLS/SECONDS, e.g. 300/900") from exc
    if parsed[0] < 1 or parsed[1] < 1:
        raise ValueError(f"quota {text!r} must be positive")
    return parsed
