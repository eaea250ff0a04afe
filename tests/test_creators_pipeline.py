"""Region tick → fetch jobs on their own arq queue → samples and ledger counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from arq.worker import Worker, func
from redis.asyncio import Redis

from engine import fetch_queue, queue
from engine.jobs import refresh
from engine.jobs.fetch import TRACKER, Tracker, fetch_batch
from engine.platforms.config import TrackingSettings
from engine.resilience import BreakerConfig, CircuitBreaker, RetryPolicy
from engine.runtime import Runtime
from storage.database import Database
from storage.models import JobRun, RunStatus
from storage.queries import creators, regions, runs
from storage.settings import Settings
from tests.creators_support import (
    MockPlatform,
    add_creators,
    add_region,
    caller_for,
    mock_platform,
    tracking,
)

FIRE = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
async def rt(test_settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    pool = await queue.connect(test_settings)
    yield Runtime(settings=test_settings, db=db, redis=pool)
    await pool.aclose()


@asynccontextmanager
async def _run_worker(
    rt: Runtime,
    redis: Redis,
    mock: MockPlatform,
    ts: TrackingSettings,
    breaker: BreakerConfig | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[None]:
    async with caller_for(redis, rt.settings, mock, ts=ts, breaker=breaker, retry=retry) as caller:
        worker = Worker(
            functions=[func(fetch_batch, name=fetch_queue.FETCH_FUNCTION, max_tries=3)],
            queue_name=fetch_queue.queue_name(rt.settings),
            redis_pool=rt.redis,
            ctx={"runtime": rt, TRACKER: Tracker(ts, caller)},
            handle_signals=False,
            poll_delay=0.05,
            max_jobs=4,
        )
        task = asyncio.create_task(worker.main())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _tick(rt: Runtime, code: str) -> tuple[int, dict[str, object]]:
    async with rt.db.session() as session:
        claim = await runs.claim(
            session,
            kind=runs.TICK,
            region_code=code,
            scheduled_for=FIRE,
            job_id="test-tick",
            worker="test",
        )
        region = await regions.get_region(session, code)
    assert claim is not None and region is not None
    counts = await refresh.refresh_region(rt, region, claim.run_id)
    return claim.run_id, counts


async def test_tick_fans_out_batches_and_records_counts(
    rt: Runtime, db: Database, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = tracking(fetch_batch_size=50)
    monkeypatch.setattr(refresh, "get_tracking_settings", lambda: ts)
    await add_region(db)
    await add_region(db, "OTHER_REGION")
    await add_creators(db, 230)
    mock = mock_platform(gone_ids={"acct7"})
    async with _run_worker(rt, redis, mock, ts):
        run_id, counts = await _tick(rt, "TEST_REGION")
    assert counts["creators_due"] == 230
    assert counts["batches"] == 5 and counts["batches_done"] == 5
    assert counts["fetched"] == 229 and counts["failed"] == 1 and counts["gone"] == 1
    assert counts["api_calls"] == 5  # one batch call per 50 creators
    async with db.session() as session:
        assert await creators.count_samples(session) == 229
        totals = await creators.batch_totals(session, run_id)
        assert totals.done == 5 and totals.counts["fetched"] == 229
        # Re-running the same fire time finds nothing owed (same slot).
        assert await creators.due_creators(session, "TEST_REGION", FIRE) == []


async def test_open_breaker_defers_batches_and_the_tick_says_why(
    rt: Runtime, db: Database, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = tracking(fetch_batch_size=50)
    monkeypatch.setattr(refresh, "get_tracking_settings", lambda: ts)
    await add_region(db)
    await add_creators(db, 60)
    await CircuitBreaker(redis, rt.settings, "mock").force_open(60, "HTTP 503 storm")
    _, counts = await _tick(rt, "TEST_REGION")
    assert counts["creators_due"] == 60 and counts["batches_done"] == 0
    breaker = counts["breaker"]
    assert isinstance(breaker, dict) and "HTTP 503 storm" in breaker["mock"]
    # The batches wait in the queue until the cool-down ends, they did not fail.
    depth = await fetch_queue.depth(rt.redis, rt.settings)
    assert depth.deferred == 2


async def test_batch_deferred_mid_tick_lands_in_the_ledger_when_it_ends(
    rt: Runtime, db: Database, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = tracking(fetch_batch_size=50, fetch_max_tries=10)
    monkeypatch.setattr(refresh, "get_tracking_settings", lambda: ts)
    await add_region(db)
    await add_creators(db, 50)
    mock = mock_platform(error_rate=1.0)
    quick = BreakerConfig(consecutive_failures=2, open_s=0.5, probe_timeout_s=1)
    retry = RetryPolicy(attempts=3, initial_s=0.01, max_backoff_s=0.02)
    async with _run_worker(rt, redis, mock, ts, breaker=quick, retry=retry):
        run_id, counts = await _tick(rt, "TEST_REGION")
        # The platform failed: the batch reported "try again later", the tick did not wait.
        assert counts["batches"] == 1 and counts["batches_done"] == 0
        assert counts["fetched"] == 0 and counts["retried_later"] == 50
        async with db.session() as session:
            await runs.finish(session, run_id, status=RunStatus.OK, counts=counts)
        mock.state.config.error_rate = 0.0  # the platform recovers

        async def ledger() -> dict[str, object]:
            async with db.session() as session:
                run = await session.get(JobRun, run_id, populate_existing=True)
                assert run is not None
                return run.counts

        deadline = asyncio.get_running_loop().time() + 15
        while (await ledger()).get("fetched") != 50:
            assert asyncio.get_running_loop().time() < deadline, await ledger()
            await asyncio.sleep(0.1)
    final = await ledger()
    assert final["batches_done"] == 1 and final["creators_due"] == 50
