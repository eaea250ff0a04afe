"""The fetch job against the mock platform: ETag, rate limits, breaker, dead letters, re-runs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from engine import metrics
from engine.dead_letters import requeue
from engine.jobs.fetch import run_fetch
from engine.resilience import BreakerConfig, BreakerState, CircuitBreaker, RetryPolicy
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Creator, CreatorStatus, DeadLetter, FollowerSample
from storage.queries import creators, dead_letters
from storage.settings import Settings
from tests.support.creators import add_creators, add_region, caller_for, mock_platform, tracking

SLOT = 1_790_000_040  # a multiple of 60


@pytest.fixture
async def rt(test_settings: Settings, db: Database) -> Runtime:
    from engine import queues

    pool = await queues.connect(test_settings)
    runtime = Runtime(settings=test_settings, db=db, redis=pool)
    yield runtime  # type: ignore[misc]
    await pool.aclose()


async def _sample_count(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(FollowerSample)) or 0)


async def _creator(db: Database, creator_id: int) -> Creator:
    async with db.session() as session:
        found = await session.get(Creator, creator_id)
        assert found is not None
        return found


async def test_etag_round_trip_304_keeps_last_sample_and_writes_none(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    await add_region(db)
    ids = await add_creators(db, 120)
    mock = mock_platform()
    async with caller_for(redis, test_settings, mock) as caller:
        first = await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids, final=False)
        assert first.counts["fetched"] == 120 and first.counts["api_calls"] == 1
        assert await _sample_count(db) == 120
        before = await _creator(db, ids[0])
        assert before.etag and before.followers is not None

        # Next sampling slot, same platform data (the mock's slot did not move): all 304.
        second = await run_fetch(rt, caller, 0, 0, "mock", SLOT + 60, ids, final=False)
        assert second.counts["not_modified"] == 120 and second.counts["fetched"] == 0
        assert await _sample_count(db) == 120  # no write for a 304
        after = await _creator(db, ids[0])
        assert after.followers == before.followers and after.etag == before.etag
        assert after.last_slot_at == datetime.fromtimestamp(SLOT + 60, UTC)

        # The platform's numbers move: a new sample per creator.
        mock.clock.now += 60
        third = await run_fetch(rt, caller, 0, 0, "mock", SLOT + 120, ids, final=False)
        assert third.counts["fetched"] == 120
        assert await _sample_count(db) == 240

    # The single-lookup path (batching off) does the same with If-None-Match → 304.
    mock.clock.now += 60
    async with caller_for(redis, test_settings, mock) as caller:
        one = await run_fetch(rt, caller, 0, 0, "mock", SLOT + 180, ids[:1], final=False)
        again = await run_fetch(rt, caller, 0, 0, "mock", SLOT + 240, ids[:1], final=False)
    assert one.counts["fetched"] == 1 and again.counts["not_modified"] == 1
    assert mock.state.counters["304"] >= 121


async def test_rate_limit_429_retry_after_pauses_then_succeeds(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    await add_region(db)
    ids = await add_creators(db, 3)
    mock = mock_platform(rate_limit=1, rate_window_s=1.0)
    mock.state.clock = time.time  # real time: the window must really pass
    async with caller_for(redis, test_settings, mock, ts=tracking(fetch_concurrency=1)) as caller:
        started = time.monotonic()
        # One creator per call: three calls against one request per second per token.
        for cid in ids:
            report = await run_fetch(rt, caller, 0, 0, "mock", SLOT, [cid], final=False)
            assert report.counts["fetched"] == 1
        elapsed = time.monotonic() - started
    assert mock.state.counters["429"] >= 1
    assert elapsed >= 1.0  # Retry-After (1 s) was honoured, not hammered
    assert mock.state.counters["429"] <= 4  # every worker waited on the shared pause


async def test_breaker_opens_defers_batch_and_tick_sees_why(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    await add_region(db)
    ids = await add_creators(db, 10)
    mock = mock_platform(error_rate=1.0)
    config = BreakerConfig(min_calls=3, failure_ratio=0.5, consecutive_failures=3, open_s=30)
    retry = RetryPolicy(attempts=5, initial_s=0.01, max_backoff_s=0.02)
    async with caller_for(
        redis, test_settings, mock, ts=tracking(fetch_concurrency=1), breaker=config, retry=retry
    ) as caller:
        report = await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids, final=False)
    assert report.retry_in_s is not None and report.retry_in_s > 1  # deferred, not failed
    assert report.counts["fetched"] == 0 and report.counts["failed"] == 0
    assert report.counts["retried_later"] == 10
    status = await CircuitBreaker(redis, test_settings, "mock").status()
    assert status.state == BreakerState.OPEN and "503" in (status.reason or "")
    # Calls stopped once it opened: the 4th and 5th attempts never reached the platform.
    assert mock.state.counters["503"] == 3 and report.counts["api_calls"] == 3
    assert await _sample_count(db) == 0


async def test_permanent_failure_dead_letter_then_requeue_succeeds(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    await add_region(db)
    ids = await add_creators(db, 5)
    mock = mock_platform(gone_ids={"acct2"}, revoked_tokens=set())
    async with caller_for(redis, test_settings, mock) as caller:
        report = await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids, final=False)
    assert report.counts["fetched"] == 4 and report.counts["gone"] == 1
    gone = await _creator(db, ids[2])
    assert gone.status == CreatorStatus.GONE.value and "not found" in (gone.last_error or "")
    async with db.session() as session:
        letters = await dead_letters.list_letters(session)
    assert len(letters) == 1 and letters[0].creator_id == ids[2]
    assert letters[0].payload["external_id"] == "acct2"

    # The account comes back; a person requeues the letter; the fetch job succeeds.
    mock.state.config.gone_ids.clear()
    assert await requeue(db, rt.redis, test_settings, None, actor="tester") == 1
    async with db.session() as session:
        (letter,) = await dead_letters.list_letters(session)
    assert letter.status == "requeued"
    job_ids = await rt.redis.zrange(f"{test_settings.redis_prefix}:queue:fetch", 0, -1)
    assert len(job_ids) == 1
    async with caller_for(redis, test_settings, mock) as caller:
        slot_now = int(creators.slot_start(datetime.now(UTC), 60).timestamp())
        again = await run_fetch(rt, caller, 0, 0, "mock", slot_now, [ids[2]], final=False)
    assert again.counts["fetched"] == 1
    back = await _creator(db, ids[2])
    assert back.status == CreatorStatus.ACTIVE.value and back.followers is not None
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(DeadLetter)) == 0


async def test_revoked_token_marks_needs_auth(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    await add_region(db)
    ids = await add_creators(db, 3)
    mock = mock_platform(revoked_tokens={"mock-token"})
    async with caller_for(redis, test_settings, mock) as caller:
        report = await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids, final=False)
    assert report.counts["needs_auth"] == 3
    assert (await _creator(db, ids[0])).status == CreatorStatus.NEEDS_AUTH.value
    # A 401 is about our token, not the platform's health: the breaker stays closed.
    status = await CircuitBreaker(redis, test_settings, "mock").status()
    assert status.state == BreakerState.CLOSED


async def test_killed_mid_batch_rerun_writes_no_duplicates(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    await add_region(db)
    ids = await add_creators(db, 300)
    slow = mock_platform(latency_ms=300)
    ts = tracking(fetch_concurrency=3, mockstagram_max_batch=100)
    async with caller_for(redis, test_settings, slow, ts=ts) as caller:
        # Killed while the platform answers: nothing of this attempt is written.
        task = asyncio.create_task(run_fetch(rt, caller, 7, 1, "mock", SLOT, ids, final=False))
        await asyncio.sleep(0.15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _sample_count(db) == 0
    fast = mock_platform()
    async with caller_for(redis, test_settings, fast, ts=ts) as caller:
        # The first half was written (then "killed" after its commit): the re-run skips it.
        await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids[:150], final=False)
        rerun = await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids, final=False)
        assert rerun.counts["fetched"] == 150
        again = await run_fetch(rt, caller, 0, 0, "mock", SLOT, ids, final=False)
        assert again.counts == {**again.counts, "fetched": 0, "api_calls": 0}
    async with db.session() as session:
        dupes = await session.execute(
            select(FollowerSample.creator_id)
            .group_by(FollowerSample.creator_id, FollowerSample.observed_at)
            .having(func.count() > 1)
        )
        assert dupes.all() == []
    assert await _sample_count(db) == 300


async def test_every_platform_call_is_counted_per_platform_retries_too(
    rt: Runtime, db: Database, redis: Redis, test_settings: Settings
) -> None:
    """`creatordeck_platform_calls_total` (the dashboard's calls per creator) counts each try."""
    await add_region(db)
    ids = await add_creators(db, 40)
    mock = mock_platform(error_rate=0.5)
    retry = RetryPolicy(attempts=8, initial_s=0.001, max_backoff_s=0.002)
    before = _calls("mock")
    async with caller_for(redis, test_settings, mock, retry=retry) as caller:
        for cid in ids:  # one creator per call: forty calls and their retries
            await run_fetch(rt, caller, 0, 0, "mock", SLOT, [cid], final=False)
    made = mock.state.counters["requests"]
    assert made > len(ids), "some calls failed and were tried again"
    assert _calls("mock") - before == made


def _calls(platform: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "creatordeck_platform_calls_total", {"platform": platform}
        )
        or 0.0
    )
