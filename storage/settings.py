"""Process settings: one tree, read from the environment (and a `.env` file when present).

`Settings` is the root. Its top level holds what every process shares (where Postgres and
Redis are, the key namespace, the encryption key, the mode); each process's own knobs live in a
section: `settings.engine`, `.api`, `.alerts`, `.retention`, `.tracking`, `.demo`, `.oauth`.

Invariants:
- Environment variable names are flat and never change with the tree (README's configuration
  table, compose.yaml and the Dockerfile use them): a section is itself a `BaseSettings` that
  reads its fields under the same flat names (an `env_prefix`, or a `validation_alias` where
  the name does not fit the prefix).
- Processes build one `Settings` at start and pass it down (the engine's `Runtime`, the api's
  `ApiContext`, the console's app): nothing reads the environment later, so a test hands a
  process the settings it wants instead of patching globals.
- Errors never echo a value: URLs and keys here carry credentials; messages name the variable.

Every field's docstring is its description (what README's table says, shorter).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
ENV_FILE = ".env"


def _config(env_prefix: str = "") -> SettingsConfigDict:
    return SettingsConfigDict(
        env_file=ENV_FILE,
        env_prefix=env_prefix,
        extra="ignore",
        hide_input_in_errors=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class EnvMode(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class EngineSettings(BaseSettings):
    """`creatordeck engine`: the scheduler, the workers and the engine's /metrics."""

    model_config = _config()

    region_refresh_interval_ms: int = Field(default=300_000, ge=100)
    """Full reconcile of regions into tick jobs (edits arrive at once via NOTIFY)."""
    concurrency: int = Field(default=4, ge=1, le=1000)
    """Jobs one engine process runs at once, per queue."""
    tick_shards: int = Field(default=16, ge=1, le=4096)
    """Tick jobs per fire time (regions split by a hash of their code); every engine of a
    deployment must use the same number."""
    tick_timeout_s: int = Field(default=300, ge=1)
    """A tick's time limit (publish jobs never get more)."""
    shutdown_grace_s: float = Field(default=25.0, ge=0)
    """On SIGTERM, how long running jobs may finish before they are cancelled and requeued."""
    rollup_readers: int = Field(default=2, ge=1, le=32)
    """Sessions a rollup reads raw events with at once (daily rows a day each, a full funnel
    run a share of the units each): one per core of the database machine (Postgres runs each
    statement on one core). A full run holds up to 3 + 2 * this many of the process's pooled
    connections (DB_POOL_SIZE, twice that with overflow)."""
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    """The engine's Prometheus /metrics port; 0 = off."""
    metrics_host: str = "127.0.0.1"
    """Address the engine's /metrics listens on: loopback unless opened (0.0.0.0 in a
    container that Prometheus scrapes from another)."""

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


class ApiSettings(BaseSettings):
    """`creatordeck api`: the HTTP service for the mobile app and the dashboards."""

    model_config = _config()

    workers: int = Field(default=0, ge=0, le=64, validation_alias="api_workers")
    """uvicorn processes of `creatordeck api` (API_WORKERS); 0 = one per CPU core available."""
    dashboard_token: SecretStr | None = None
    """`x-dashboard-token` for /v1/metrics/*; unset: dashboard reads answer 503."""


class AlertSettings(BaseSettings):
    """Alert notifications (ALERT_*): the engine's webhooks and the console's alert view."""

    model_config = _config("alert_")

    # Webhook URLs often carry a token (in the path or the query): secrets, never logged.
    webhook_page: SecretStr | None = None
    """https URL POSTed (JSON) once when a page alert fires and once when it resolves;
    unset: no notifications for page alerts."""
    webhook_ticket: SecretStr | None = None
    """As ALERT_WEBHOOK_PAGE, for ticket alerts."""
    for_max_s: int | None = Field(default=None, ge=0)
    """Caps every alert condition's `for` duration in the console and the engine's webhooks
    (the demo sets 30); the Prometheus rules keep the table's."""

    @field_validator("webhook_page", "webhook_ticket", mode="before")
    @classmethod
    def _empty_webhook(cls, value: object) -> object:
        return None if value == "" else value  # `ALERT_WEBHOOK_PAGE=` in a .env: off

    @field_validator("webhook_page", "webhook_ticket")
    @classmethod
    def _webhook(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # The message never repeats the URL: it is a secret (pydantic shows a SecretStr masked).
        if value is not None:
            problem = _webhook_problem(value.get_secret_value())
            if problem:
                raise ValueError(f"ALERT_{(info.field_name or '').upper()}: {problem}")
        return value


class RetentionSettings(BaseSettings):
    """How long raw time series are kept (whole partitions are dropped)."""

    model_config = _config()

    event_days: int = Field(default=90, ge=0, validation_alias="event_retention_days")
    """Days of raw events kept (EVENT_RETENTION_DAYS; daily partitions); 0 = for ever."""
    sample_days: int = Field(default=730, ge=0, validation_alias="sample_retention_days")
    """Days of follower samples kept (SAMPLE_RETENTION_DAYS; monthly partitions); 0 = for
    ever."""


class TrackingSettings(BaseSettings):
    """Creator tracking: batch sizes, concurrency, quotas and platform credentials.

    Secrets never come from anywhere but the environment.
    """

    model_config = _config()

    fetch_batch_size: int = Field(default=2000, ge=1, le=10_000)
    """Creators per fetch job (1 = batching off)."""
    fetch_concurrency: int = Field(default=8, ge=1, le=256)
    """API calls at once per platform per engine."""
    fetch_jobs: int = Field(default=8, ge=1, le=1000)
    """Fetch jobs at once per engine."""
    fetch_max_tries: int = Field(default=8, ge=1)
    """Tries of a fetch job (it defers between them)."""
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    """One API call's timeout."""
    sample_slot_s: int = Field(default=60, ge=1)
    """One follower sample per creator per slot of this many seconds."""
    mockstagram_url: str = "http://127.0.0.1:8765"
    """Where the mock platform (`creatordeck mockstagram`) listens: fetches and publishes."""
    mockstagram_max_batch: int = Field(default=500, ge=1, le=1000)
    """Ids per call to the mock platform."""
    mockstagram_token: SecretStr = SecretStr("mock-token")
    """The mock platform's API token."""
    mockstagram_quota: str = "20000/1"
    """Calls/seconds per token on the mock platform."""
    youtube_api_key: SecretStr | None = None
    """YouTube Data API key; unset: YouTube creators are not tracked."""
    youtube_quota: str = "100/100"
    """Calls/seconds on YouTube."""
    x_bearer_token: SecretStr | None = None
    """X app bearer token; unset: X creators are not tracked."""
    x_quota: str = "300/900"
    """Calls/seconds on X (user lookup, app)."""
    instagram_access_token: SecretStr | None = None
    """Instagram Graph API token; unset: Instagram creators are not tracked."""
    instagram_user_id: str | None = None
    """Our Instagram business account id (business discovery)."""
    instagram_quota: str = "200/3600"
    """Calls/seconds on Instagram."""


class DemoSettings(BaseSettings):
    """`creatordeck demo` (DEMO_*): the loopback ports of what it starts."""

    model_config = _config("demo_")

    api_port: int = Field(default=8000, ge=1, le=65535)
    """The api's port (loopback; `--api-port` wins)."""
    mock_port: int = Field(default=8765, ge=1, le=65535)
    """The mock platform's port (loopback; `--mock-port` wins)."""


class OAuthSettings(BaseSettings):
    """Connecting platform accounts (engine.oauth): client ids and secrets, refresh timing.
    Client secrets come from the environment only, never the database, and are never logged."""

    model_config = _config()

    youtube_client_id: str | None = None
    """Google OAuth client id of type "TVs and Limited Input devices" (device flow)."""
    youtube_client_secret: SecretStr | None = None
    """Its client secret (Google's device flow sends it with every token request)."""
    facebook_app_id: str | None = None
    """Facebook app id (Facebook Pages and Instagram business accounts, Login for Devices)."""
    facebook_client_token: SecretStr | None = None
    """The app's client token (App settings > Advanced): device login sends APP_ID|TOKEN."""
    facebook_app_secret: SecretStr | None = None
    """The app secret: exchanges the device login's token for a long-lived one, whose Page
    tokens do not expire. Unset: Page tokens expire with the short-lived user token."""
    x_client_id: str | None = None
    """X OAuth 2.0 client id (authorization code flow with PKCE)."""
    x_client_secret: SecretStr | None = None
    """X client secret for a confidential client (sent as HTTP Basic); unset: public client."""
    x_redirect_uri: str = "http://127.0.0.1:8976/callback"
    """Callback URL registered with the X app; the operator pastes back where it led."""
    mock_client_id: str = "creatordeck-demo"
    """Client id at the mock platform (`creatordeck mockstagram`)."""
    base_url: str | None = Field(default=None, validation_alias="oauth_base_url")
    """Tests and demo only: send every platform's OAuth and identity requests to this base URL
    (the mock platform), keeping each endpoint's path. Refused under ENV=prod."""
    refresh_margin_s: float = Field(default=600.0, ge=1, validation_alias="oauth_refresh_margin_s")
    """Refresh a token this long before it expires (at most a quarter of its lifetime)."""
    refresh_jitter_s: float = Field(default=120.0, ge=0, validation_alias="oauth_refresh_jitter_s")
    """Up to this much earlier again, by connection (spreads refreshes of tokens issued
    together; at most a tenth of the lifetime)."""
    refresh_every_s: float = Field(default=30.0, gt=0, validation_alias="oauth_refresh_every_s")
    """How often each engine looks for tokens due for a refresh (one indexed query)."""
    timeout_s: float = Field(default=15.0, gt=0, validation_alias="oauth_timeout_s")
    """One OAuth request's timeout (a refresh holds the connection's row lock this long at
    most)."""


# The sections of the tree: field name on Settings -> its model.
class PostMetricsSettings(BaseSettings):
    """How a published post did: when the engine reads its views, likes, comments and shares.

    Each step is read once (a unique row per publication and step); a step missed while the
    engine was down is read late, and only the latest due step of a post is read.
    """

    model_config = _config("POST_METRICS_")

    steps_s: list[int] = Field(default=[3600, 21_600, 86_400, 604_800], min_length=1)
    """Seconds after publishing at which to read a post's metrics, growing (1 h, 6 h, 24 h, 7 d)."""
    scan_every_min: int = Field(default=5, ge=1, le=60)
    """Minutes between the engine's scans for due reads (an arq cron on the metrics queue)."""
    max_per_scan: int = Field(default=5000, ge=1, le=100_000)
    """Due publications one scan reads at most; the rest wait for the next scan."""
    timeout_s: float = Field(default=10.0, gt=0)
    """One metrics call's timeout."""

    @field_validator("steps_s")
    @classmethod
    def _growing(cls, steps: list[int]) -> list[int]:
        if any(step <= 0 for step in steps) or steps != sorted(set(steps)):
            raise ValueError("steps_s must be positive and strictly growing, e.g. [3600, 86400]")
        return steps


SECTIONS: dict[str, type[BaseSettings]] = {
    "engine": EngineSettings,
    "api": ApiSettings,
    "alerts": AlertSettings,
    "retention": RetentionSettings,
    "tracking": TrackingSettings,
    "demo": DemoSettings,
    "oauth": OAuthSettings,
    "post_metrics": PostMetricsSettings,
}


class Settings(BaseSettings):
    """The root: what every process shares, and one section per process or concern."""

    model_config = _config()

    database_url: str | None = None
    """postgresql+asyncpg://… ; unset: the embedded Postgres in DATA_DIR."""
    redis_url: str | None = None
    """redis://… ; unset: the embedded redis-server in DATA_DIR."""
    redis_prefix: str = "creatordeck"
    """Namespace of every Redis key and job id we write."""
    data_dir: str | None = None
    """Embedded servers' folder; default ~/.local/share/creatordeck."""
    env: EnvMode = EnvMode.DEV
    """dev | test | prod; in prod missing URLs are an error, never embedded."""
    pgbouncer: bool = False
    """Behind PgBouncer (transaction mode): no statement cache."""
    db_pool_size: int = Field(default=10, ge=1)
    """SQLAlchemy pool size per process (and the api's asyncpg pool)."""
    log_level: str = "INFO"
    """Engine and api log level."""
    encryption_key: SecretStr | None = None
    """Fernet key for platform tokens at rest (`new,old` rotates)."""

    engine: Annotated[EngineSettings, NoDecode] = Field(default_factory=EngineSettings)
    """`creatordeck engine`."""
    api: Annotated[ApiSettings, NoDecode] = Field(default_factory=ApiSettings)
    """`creatordeck api`."""
    alerts: Annotated[AlertSettings, NoDecode] = Field(default_factory=AlertSettings)
    """Alert notifications."""
    retention: Annotated[RetentionSettings, NoDecode] = Field(default_factory=RetentionSettings)
    """Raw time-series retention."""
    tracking: Annotated[TrackingSettings, NoDecode] = Field(default_factory=TrackingSettings)
    """Creator tracking and platform credentials."""
    demo: Annotated[DemoSettings, NoDecode] = Field(default_factory=DemoSettings)
    """`creatordeck demo`."""
    oauth: Annotated[OAuthSettings, NoDecode] = Field(default_factory=OAuthSettings)
    """Connecting platform accounts and keeping their tokens alive."""
    post_metrics: Annotated[PostMetricsSettings, NoDecode] = Field(
        default_factory=PostMetricsSettings
    )
    """Reading how published posts did (views, likes, comments, shares)."""

    # NoDecode: a variable that happens to be named like a section (`API=…`) is not parsed as
    # the section's JSON; sections always come from __init__ below.
    def __init__(self, **values: Any) -> None:
        # A section not given, or given as a dict of some of its fields, is read from the
        # environment with the root's `.env` choice: `Settings(engine={"concurrency": 2},
        # _env_file=None)` keeps every other engine field from the environment alone.
        env_file = values.get("_env_file", ENV_FILE)
        for name, section in SECTIONS.items():
            given = values.get(name)
            if given is None or isinstance(given, dict):
                values[name] = section(_env_file=env_file, **(given or {}))
        super().__init__(**values)

    def replace(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of some sections changed, e.g.
        `settings.replace(alerts={"for_max_s": 30})`; like `model_copy`, not validated."""
        updates = {
            name: getattr(self, name).model_copy(update=fields) for name, fields in sections.items()
        }
        return self.model_copy(update=updates)


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
    """The process's settings, read once at start (entry points only; pass them down)."""
    return Settings()
