"""The engine's metrics scan: load what is due → plan batches (pure) → one read per batch →
write its rows in one transaction.

Guarantees:
- Idempotent: a row per (publication, step) (unique); a re-run of the same due step — a second
  replica, an arq retry — writes nothing new.
- A platform error never touches the post or publication: the batch is deferred (its reads stay
  due, so the next scan takes them again). An open circuit breaker defers without calling.
- A successful answer settles the step for every post of the batch: a post the platform left
  out gets a row with no counts, so a deleted post is not asked for again at every scan.
- Connections that need re-authorisation are skipped (their token would only answer 401).
- Tokens are decrypted in memory per batch and never logged.

Cost: one candidates query per scan (bounded by `max_per_scan`), one API call per batch (per
post where the platform has no batch read), one INSERT per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.cron import CronJob, cron
from redis.asyncio import Redis

from engine import logs, redis_keys
from engine.post_metrics.plan import MetricsBatch, plan_batches, scan_window
from engine.post_metrics.readers import DEFAULT_BASE_URLS, MAX_BATCH, READERS, Counts
from engine.resilience import BreakerOpen, CircuitBreaker, Failure
from engine.runtime import Runtime
from storage.clock import Clock, utc_now
from storage.crypto import EncryptionKeyError, TokenUnreadable, cipher
from storage.database import Database
from storage.queries import post_metrics as queries
from storage.settings import Settings

METRICS = redis_keys.METRICS
SCAN_FUNCTION = "scan_post_metrics"
SCAN_TIMEOUT_S = 600
NOTHING = Counts()

log = logs.get("engine.post_metrics")


@dataclass
class ScanReport:
    batches: int = 0
    calls: int = 0
    written: int = 0
    deferred: dict[int, str] = field(default_factory=dict)  # publication id → why


async def run_scan(
    db: Database,
    redis: Redis,
    settings: Settings,
    client: httpx.AsyncClient,
    clock: Clock = utc_now,
    base_urls: Mapping[str, str] | None = None,
) -> ScanReport:
    """One scan: read every due publication once, write what came back."""
    cfg = settings.post_metrics
    now = clock()
    after, before = scan_window(cfg.steps_s, now)
    async with db.transaction() as session:
        candidates = await queries.metric_candidates(
            session, after, before, cfg.steps_s[-1], cfg.max_per_scan
        )
    urls = {**DEFAULT_BASE_URLS, "mock": settings.tracking.mockstagram_url, **(base_urls or {})}
    report = ScanReport()
    for batch in plan_batches(candidates, cfg.steps_s, now, MAX_BATCH):
        report.batches += 1
        why = await _read_batch(db, redis, settings, client, batch, urls, clock, report)
        if why is not None:
            report.deferred.update({r.candidate.publication_id: why for r in batch.reads})
            log.warning(
                "post_metrics.deferred", platform=batch.platform, reads=len(batch.reads), why=why
            )
    return report


async def _read_batch(
    db: Database,
    redis: Redis,
    settings: Settings,
    client: httpx.AsyncClient,
    batch: MetricsBatch,
    urls: Mapping[str, str],
    clock: Clock,
    report: ScanReport,
) -> str | None:
    """Read and write one batch; None when done, else why it was deferred."""
    reader = READERS.get(batch.platform)  # type: ignore[call-overload]
    if reader is None:
        return f"no metrics reader for {batch.platform}"
    first = batch.reads[0].candidate
    try:
        token = cipher(settings).decrypt(first.token_encrypted)
    except (EncryptionKeyError, TokenUnreadable) as exc:
        return str(exc)
    breaker = CircuitBreaker(redis, settings, batch.platform)
    try:
        permit = await breaker.allow()
    except BreakerOpen as exc:
        return str(exc)
    ids = [r.candidate.external_id for r in batch.reads]
    report.calls += 1
    try:
        counts = await reader(client, urls.get(batch.platform, ""), token, first.account_id, ids)
    except Failure as failure:
        if failure.counts_against_platform:
            await breaker.record_failure(permit, reason=str(failure))
        else:
            await breaker.record_success(permit)
        return f"{failure.kind.value}: {failure}"
    await breaker.record_success(permit)
    fetched_at = clock()
    rows = [
        queries.MetricRow(
            publication_id=r.candidate.publication_id,
            step_s=r.step_s,
            fetched_at=fetched_at,
            views=c.views,
            likes=c.likes,
            comments=c.comments,
            shares=c.shares,
        )
        for r in batch.reads
        # A post the platform left out (deleted, not visible to the token) gets an empty row:
        # "nothing reported" at this step, and it is not asked again every scan.
        for c in (counts.get(r.candidate.external_id, NOTHING),)
    ]
    async with db.transaction() as session:
        report.written += await queries.insert_metrics(session, rows)
    return None


async def on_startup(ctx: dict[str, Any]) -> None:
    rt: Runtime = ctx["runtime"]
    ctx["metrics_client"] = httpx.AsyncClient(timeout=rt.settings.post_metrics.timeout_s)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    client = ctx.pop("metrics_client", None)
    if client is not None:
        await client.aclose()


async def scan_post_metrics(ctx: dict[str, Any]) -> dict[str, Any]:
    rt: Runtime = ctx["runtime"]
    report = await run_scan(rt.db, rt.redis, rt.settings, ctx["metrics_client"])
    return {"batches": report.batches, "written": report.written, "deferred": len(report.deferred)}


def cron_jobs(settings: Settings) -> list[CronJob]:
    every = settings.post_metrics.scan_every_min
    return [
        cron(
            scan_post_metrics,
            # The name makes the job id: one per fire time, whatever the number of replicas.
            name=redis_keys.cron_name(settings, METRICS),
            minute=set(range(0, 60, every)),
            unique=True,
            timeout=SCAN_TIMEOUT_S,
            max_tries=1,
        )
    ]
