"""Region tick shard → fetch jobs on their own arq queue → samples, ledger counts, completion.

The shard never waits for its batches: the last batch to report completes the run row.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from arq.worker import Worker, func
from redis.asyncio import Redis
from sqlalchemy import select

from engine import fetch_queue, queues, tick_queue
from engine.jobs import refresh
from engine.jobs.fetch import TRACKER, Tracker, fetch_batch
from engine.jobs.tick import run_shard
from engine.resilience import BreakerConfig, CircuitBreaker, RetryPolicy
from engine.runtime import Runtime
from storage.database import Database
from storage.models import JobRun, RunStatus
from storage.queries import creators, ticks
from storage.settings import Settings, TrackingSettings
from tests.support.creators import (
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
    pool = await queues.connect(test_settings)
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


async def _tick(rt: Runtime, *codes: str, job_id: str = "test-tick") -> dict[str, int]:
    """Run the fire time FIRE for these regions as one manual-style shard: region -> run id."""
    report = await run_shard(rt, FIRE, None, list(codes), job_id, True)
    assert report.outcomes["ok"] + report.outcomes["already-done"] == len(codes), report
    async with rt.db.session() as session:
        rows = await session.execute(
            select(JobRun.region_code, JobRun.id).where(JobRun.scheduled_for == FIRE)
        )
        return {str(code): int(run_id) for code, run_id in rows}


async def _run(db: Database, run_id: int) -> JobRun:
    async with db.session() as session:
        run = await session.get(JobRun, run_id, populate_existing=True)
        assert run is not None
        return run


async def _completed(db: Database, run_id: int, timeout: float = 15) -> JobRun:
    deadline = asyncio.get_running_loop().time() + timeout
    while (run := await _run(db, run_id)).status == RunStatus.RUNNING.value:
        assert asyncio.get_running_loop().time() < deadline, run.counts
        await asyncio.sleep(0.05)
    return run


async def test_tick_fans_out_batches_and_the_last_batch_completes_the_run(
    rt: Runtime, db: Database, redis: Redis
) -> None:
    ts = tracking(fetch_batch_size=50)
    rt.settings = rt.settings.model_copy(update={"tracking": ts})
    await add_region(db)
    await add_region(db, "OTHER_REGION")
    await add_creators(db, 230)
    await add_creators(db, 20, region="OTHER_REGION", first=1000)
    mock = mock_platform(gone_ids={"acct7"})
    # No worker yet: the shard returns at once, its runs wait for their batches in the ledger.
    run_ids = await _tick(rt, "TEST_REGION", "OTHER_REGION")
    waiting = await _run(db, run_ids["TEST_REGION"])
    assert waiting.status == "running" and waiting.batches_expected == 5
    assert waiting.counts == {"creators_due": 230, "batches": 5}
    assert (await fetch_queue.depth(rt.redis, rt.settings)).ready == 6
    async with _run_worker(rt, redis, mock, ts):
        run = await _completed(db, run_ids["TEST_REGION"])
        other = await _completed(db, run_ids["OTHER_REGION"])
    counts = run.counts
    assert run.status == "ok" and run.batches_reported == 5 and run.finished_at is not None
    assert counts["creators_due"] == 230
    assert counts["batches"] == 5 and counts["batches_done"] == 5
    assert counts["fetched"] == 229 and counts["failed"] == 1 and counts["gone"] == 1
    assert counts["api_calls"] == 5  # one batch call per 50 creators
    assert other.counts["fetched"] == 20 and other.counts["batches_done"] == 1
    async with db.session() as session:
        assert await creators.count_samples(session) == 249
        # Re-running the same fire time finds nothing owed (same slot), and nothing to claim.
        assert await creators.due_creators(session, "TEST_REGION", FIRE) == []
    again = await run_shard(rt, FIRE, None, ["TEST_REGION"], "test-tick", True)
    assert again.line() == "already-done"


async def test_open_breaker_defers_batches_and_the_tick_says_why(
    rt: Runtime, db: Database, redis: Redis
) -> None:
    ts = tracking(fetch_batch_size=50)
    rt.settings = rt.settings.model_copy(update={"tracking": ts})
    await add_region(db)
    await add_creators(db, 60)
    await CircuitBreaker(redis, rt.settings, "mock").force_open(60, "HTTP 503 storm")
    run_ids = await _tick(rt, "TEST_REGION")
    run = await _run(db, run_ids["TEST_REGION"])
    # Nothing to wait for: the batches behind the open breaker report when it closes.
    assert run.status == "ok" and run.batches_expected == 0
    assert run.counts["creators_due"] == 60 and run.counts["batches"] == 2
    breaker = run.counts["breaker"]
    assert isinstance(breaker, dict) and "HTTP 503 storm" in breaker["mock"]
    # The batches wait in the queue until the cool-down ends, they did not fail.
    depth = await fetch_queue.depth(rt.redis, rt.settings)
    assert depth.deferred == 2


async def test_batch_deferred_mid_tick_lands_in_the_ledger_when_it_ends(
    rt: Runtime, db: Database, redis: Redis
) -> None:
    ts = tracking(fetch_batch_size=50, fetch_max_tries=10)
    rt.settings = rt.settings.model_copy(update={"tracking": ts})
    await add_region(db)
    await add_creators(db, 50)
    mock = mock_platform(error_rate=1.0)
    quick = BreakerConfig(consecutive_failures=2, open_s=0.5, probe_timeout_s=1)
    retry = RetryPolicy(attempts=3, initial_s=0.01, max_backoff_s=0.02)
    async with _run_worker(rt, redis, mock, ts, breaker=quick, retry=retry):
        run_id = (await _tick(rt, "TEST_REGION"))["TEST_REGION"]
        # The platform failed: the batch reported "try again later", which completes the run.
        run = await _completed(db, run_id)
        assert run.counts["batches"] == 1 and run.counts["batches_done"] == 0
        assert run.counts["fetched"] == 0 and run.counts["retried_later"] == 50
        mock.state.config.error_rate = 0.0  # the platform recovers

        deadline = asyncio.get_running_loop().time() + 15
        while (await _run(db, run_id)).counts.get("fetched") != 50:
            assert asyncio.get_running_loop().time() < deadline, (await _run(db, run_id)).counts
            await asyncio.sleep(0.1)
    final = (await _run(db, run_id)).counts
    assert final["batches_done"] == 1 and final["creators_due"] == 50


async def test_a_shard_killed_before_its_fan_out_is_taken_over_never_run_twice(
    rt: Runtime, db: Database, redis: Redis
) -> None:
    """The shard claimed three regions and died; one of them had been fanned out already."""
    ts = tracking(fetch_batch_size=50)
    rt.settings = rt.settings.model_copy(update={"tracking": ts})
    for n, code in enumerate(("REGION_A", "REGION_B", "REGION_C")):
        await add_region(db, code)
        await add_creators(db, 10, region=code, first=100 * n)
    async with rt.db.session() as session:
        claimed = await ticks.claim_many(
            session,
            region_codes=["REGION_A", "REGION_B", "REGION_C"],
            fire=FIRE,
            job_id="shard-job",
            worker="dead-worker",
            manual=True,
        )
        await session.commit()
    fanned = [c for c in claimed if c.region_code == "REGION_A"]
    await refresh.fan_out(rt, fanned, FIRE)  # A's batches went out before the worker died
    run_ids = await _tick(rt, "REGION_A", "REGION_B", "REGION_C", job_id="shard-job")
    async with db.session() as session:
        rows = {
            r.region_code: (r.attempt, r.batches_expected)
            for r in await session.scalars(select(JobRun).where(JobRun.scheduled_for == FIRE))
        }
    # B and C were taken over (attempt 2); A was not run a second time.
    assert rows == {"REGION_A": (1, 1), "REGION_B": (2, 1), "REGION_C": (2, 1)}
    queued = await rt.redis.zrange(fetch_queue.queue_name(rt.settings), 0, -1)
    assert len(queued) == 3  # one batch per region, none twice
    async with _run_worker(rt, redis, mock_platform(), ts):
        for run_id in run_ids.values():
            assert (await _completed(db, run_id)).counts["fetched"] == 10
    async with db.session() as session:
        assert await creators.count_samples(session) == 30


async def test_batches_of_a_replaced_attempt_add_counts_but_do_not_complete_the_run(
    rt: Runtime, db: Database
) -> None:
    await add_region(db)
    async with rt.db.session() as session:
        [first] = await ticks.claim_many(
            session, region_codes=["TEST_REGION"], fire=FIRE, job_id="j", worker="w", manual=True
        )
        [second] = await ticks.claim_many(
            session, region_codes=["TEST_REGION"], fire=FIRE, job_id="j", worker="w", manual=True
        )
        await session.commit()
    assert (first.run_id, second.attempt) == (second.run_id, 2)
    async with rt.db.session() as session:
        assert await ticks.fan_out(session, [ticks.FanOut(second.run_id, 2, 1, {})]) == {
            second.run_id: "running"
        }
        await session.commit()
    stale_batch = ticks.first_batch_no(1)
    current_batch = ticks.first_batch_no(2)
    for batch_no, fetched in ((stale_batch, 3), (current_batch, 4)):
        async with rt.db.session() as session:
            first_report = await creators.add_batch_counts(
                session,
                run_id=second.run_id,
                batch_no=batch_no,
                platform="mock",
                size=5,
                status="done",
                counts={"fetched": fetched},
            )
            await ticks.report_batch(
                session, run_id=second.run_id, batch_no=batch_no, first_report=first_report
            )
            await session.commit()
        run = await _run(db, second.run_id)
        # The old attempt's batch adds its counts but is not one this attempt waits for.
        assert run.status == ("running" if batch_no == stale_batch else "ok")
    assert run.counts["fetched"] == 7 and run.batches_reported == 1


async def test_batches_lost_with_redis_are_fanned_out_again_by_a_new_attempt(
    rt: Runtime, db: Database, redis: Redis
) -> None:
    from engine.scheduler import sweep_ledger

    ts = tracking(fetch_batch_size=50)
    rt.settings = rt.settings.model_copy(update={"tracking": ts})
    await add_region(db)
    await add_creators(db, 60)
    run_id = (await _tick(rt, "TEST_REGION"))["TEST_REGION"]
    assert (await _run(db, run_id)).batches_expected == 2
    await redis.delete(fetch_queue.queue_name(rt.settings))  # Redis restarted empty
    assert await sweep_ledger(rt, redis_lost=True) == (1, 0)
    [job_id] = [
        raw.decode() for raw in await rt.redis.zrange(tick_queue.queue_name(rt.settings), 0, -1)
    ]
    report = await run_shard(rt, FIRE, None, ["TEST_REGION"], job_id, True)
    assert report.line() == "ok"
    run = await _run(db, run_id)
    assert (run.attempt, run.batches_expected, run.status) == (2, 2, "running")
    async with _run_worker(rt, redis, mock_platform(), ts):
        done = await _completed(db, run_id)
    assert done.counts["fetched"] == 60 and done.batches_reported == 2
