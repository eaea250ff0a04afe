"""Prometheus metrics of the engine and the api: one registry per process, exposed at /metrics.

Every metric of ours lives here, so names and labels stay consistent across processes.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

TICKS = Counter(
    "creatordeck_ticks",
    "Region ticks by outcome (ok, failed, skipped, missed, stale, paused, gone, already-done)",
    ["outcome"],
    registry=REGISTRY,
)
TICK_LAG = Histogram(
    "creatordeck_tick_lag_seconds",
    "Delay between a tick's fire time and its start",
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "creatordeck_job_duration_seconds",
    "Wall time of engine jobs by function",
    ["function"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
FETCH_RESULTS = Counter(
    "creatordeck_fetch_results",
    "Creator fetch results by platform and outcome",
    ["platform", "outcome"],
    registry=REGISTRY,
)
PLATFORM_CALLS = Counter(
    "creatordeck_platform_calls",
    "Platform API calls made to fetch creators, by platform (every try counts: it spends quota)",
    ["platform"],
    registry=REGISTRY,
)
PUBLISH_RESULTS = Counter(
    "creatordeck_publish_results",
    "Publish jobs by outcome (published, failed, unknown, deferred, retry, dropped, …)",
    ["outcome"],
    registry=REGISTRY,
)
BREAKER_OPEN = Gauge(
    "creatordeck_breaker_open",
    "1 while a platform's circuit breaker is open (0.5 half-open, 0 closed)",
    ["platform"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "creatordeck_api_requests",
    "HTTP requests by route, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "creatordeck_api_request_seconds",
    "HTTP request latency by route",
    ["route"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
EVENTS = Counter(
    "creatordeck_events",
    "App events by outcome (accepted, duplicate, refused)",
    ["outcome"],
    registry=REGISTRY,
)


# Alert facts (engine.alerts.sampler): what Prometheus cannot count itself, read from Postgres
# and Redis by every engine replica every SAMPLE_S; the rules take their max (or min).
REGIONS_OVERDUE = Gauge(
    "creatordeck_regions_overdue",
    "Active regions with a fire time past its grace and no ledger row",
    registry=REGISTRY,
)
TICK_OLDEST_RUNNING = Gauge(
    "creatordeck_tick_oldest_running_seconds",
    "Age of the longest-running region tick (0: none running)",
    registry=REGISTRY,
)
PUBLICATIONS_UNKNOWN = Gauge(
    "creatordeck_publications_unknown",
    "Publications whose outcome is unknown, waiting for a person",
    registry=REGISTRY,
)
QUOTA_USED = Gauge(
    "creatordeck_quota_used_ratio",
    "Share of a platform's API quota used in its current window",
    ["platform"],
    registry=REGISTRY,
)
DEAD_LETTERS_PENDING = Gauge(
    "creatordeck_dead_letters_pending", "Dead letters waiting for a person", registry=REGISTRY
)
DEAD_LETTERS_RECENT = Gauge(
    "creatordeck_dead_letters_recent",
    "Pending dead letters that failed in the last 30 minutes",
    registry=REGISTRY,
)
ENGINE_REPLICAS = Gauge(
    "creatordeck_engine_replicas",
    "Engine replicas whose heartbeat is fresh, as this replica sees them",
    registry=REGISTRY,
)
DEPENDENCY_UP = Gauge(
    "creatordeck_dependency_up",
    "1 while a dependency (postgres, redis) answers this process, else 0",
    ["dependency"],
    registry=REGISTRY,
)
TOKEN_EXPIRES_IN = Gauge(
    "creatordeck_token_expires_in_seconds",
    "Seconds until the soonest token expiry of a platform's connected accounts",
    ["platform"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The text exposition format, for an HTTP handler of our own (the api's /metrics)."""
    return generate_latest(REGISTRY)


def serve(port: int, host: str = "127.0.0.1") -> WSGIServer:
    """Expose /metrics on its own port (the engine has no HTTP server of its own).

    Loopback unless `host` opens it (METRICS_HOST): the counters say what the platform is doing.
    """
    server, _ = start_http_server(port, addr=host, registry=REGISTRY)
    return server
