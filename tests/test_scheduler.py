"""Reconciling the region table into deferred tick jobs, on real Postgres and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from arq.jobs import Job
from redis.asyncio import Redis

from engine import queue
from engine.scheduler import Scheduler, reconcile
from storage.database import Database
from storage.queries import regions
from storage.settings import Settings
from tests.engine_support import (
    add_region,
    eventually,
    ledger,
    running_worker,
    runtime,
    set_region,
)


async def pending(settings: Settings, code: str | None = None) -> list[datetime]:
    async with runtime(settings) as rt:
        refs = await queue.pending_ticks(rt.redis, settings)
    return sorted(ref.fire for ref in refs if code is None or ref.region_code == code)


async def test_new_region_gets_its_next_fire_time_enqueued(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    async with runtime(test_settings) as rt:
        now = datetime.now(UTC)
        report = await reconcile(rt, now=now)
        again = await reconcile(rt, now=now)
    expected = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if expected <= now:
        expected += timedelta(days=1)
    assert await pending(test_settings) == [expected]
    assert (report.enqueued, again.enqueued) == (1, 0)


async def test_cron_change_replaces_the_pending_tick(test_settings: Settings, db: Database) -> None:
    await add_region(db, "LA", "0 */12 * * *")
    async with runtime(test_settings) as rt:
        await reconcile(rt)
        async with db.session() as session:
            await regions.update_region(session, "LA", actor="test", cron="30 1 * * *")
        report = await reconcile(rt, only={"LA"})
    fires = await pending(test_settings, "LA")
    assert len(fires) == 1 and (fires[0].hour, fires[0].minute) == (1, 30)
    assert report.removed == 1


async def test_pause_resume_and_delete(test_settings: Settings, db: Database) -> None:
    await add_region(db, "CHI", "*/5 * * * *")
    async with runtime(test_settings) as rt:
        await reconcile(rt)
        assert len(await pending(test_settings, "CHI")) == 1
        async with db.session() as session:
            await regions.update_region(session, "CHI", actor="test", active=False)
        await reconcile(rt)
        assert await pending(test_settings, "CHI") == []
        async with db.session() as session:
            await regions.update_region(session, "CHI", actor="test", active=True)
        await reconcile(rt)
        assert len(await pending(test_settings, "CHI")) == 1
        async with db.session() as session:
            await regions.delete_region(session, "CHI", actor="test")
        await reconcile(rt)
    assert await pending(test_settings, "CHI") == []


async def test_invalid_cron_row_is_skipped_and_reported(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "GOOD", "0 * * * *")
    await add_region(db, "BAD", "0 * * * *")
    async with runtime(test_settings) as rt:
        await reconcile(rt)
        await set_region(db, "BAD", cron="61 * * * *")  # as a bad psql edit would
        report = await reconcile(rt)
    assert report.invalid == {"BAD": "invalid minute field '61'"}
    assert await pending(test_settings, "BAD") == []
    assert len(await pending(test_settings, "GOOD")) == 1


async def test_catch_up_run_once_coalesces_missed_fire_times(
    test_settings: Settings, db: Database
) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # Fire times owed: hour-4h … hour, five of them.
    await add_region(
        db, "HOURLY", "0 * * * *", schedule_since=hour - timedelta(hours=4, minutes=30)
    )
    async with runtime(test_settings) as rt:
        report = await reconcile(rt)
        assert report.missed == 4
        async with running_worker(rt):

            async def ran() -> bool:
                return any(r["status"] == "ok" for r in await ledger(db, "HOURLY"))

            await eventually(ran)
    rows = await ledger(db, "HOURLY")
    assert [r["status"] for r in rows] == ["missed"] * 4 + ["ok"]
    assert rows[-1]["scheduled_for"] == hour
    assert len({r["scheduled_for"] for r in rows}) == 5


async def test_catch_up_missed_policy_records_every_missed_fire_time(
    test_settings: Settings, db: Database
) -> None:
    now = datetime.now(UTC)
    await add_region(
        db,
        "STRICT",
        "0 * * * *",
        schedule_since=now - timedelta(hours=3, minutes=1),
        catchup_policy="missed",
        misfire_grace_s=0,
    )
    async with runtime(test_settings) as rt:
        report = await reconcile(rt, now=now)
        assert report.missed == 3
        assert await reconcile(rt, now=now) == report.__class__(regions=1)
    rows = await ledger(db, "STRICT")
    assert [r["status"] for r in rows] == ["missed"] * 3
    assert all(fire > now for fire in await pending(test_settings, "STRICT"))


async def test_catch_up_looks_back_no_further_than_its_window(
    test_settings: Settings, db: Database
) -> None:
    now = datetime.now(UTC)
    await add_region(
        db, "OLD", "0 * * * *", schedule_since=now - timedelta(days=3), catchup_window_s=6 * 3600
    )
    async with runtime(test_settings) as rt:
        report = await reconcile(rt, now=now)
    assert report.missed == 5  # six fire times in the window, the latest one runs


async def test_an_edit_reaches_the_scheduler_within_a_second(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "LIVE", "0 3 * * *")
    stop = asyncio.Event()
    async with runtime(test_settings) as rt:
        scheduler = Scheduler(rt)
        loop_task = asyncio.create_task(scheduler.run(stop))
        try:
            await eventually(lambda: _has_pending(test_settings, "LIVE"), timeout=10)
            await asyncio.sleep(0.2)  # let the LISTEN connection settle before the edit
            async with db.session() as session:
                await regions.update_region(session, "LIVE", actor="test", cron="45 4 * * *")
            edited = asyncio.get_running_loop().time()

            async def moved() -> bool:
                return [(f.hour, f.minute) for f in await pending(test_settings, "LIVE")] == [
                    (4, 45)
                ]

            await eventually(moved, timeout=1.0, every=0.02)
            assert asyncio.get_running_loop().time() - edited < 1.0
        finally:
            stop.set()
            await loop_task


async def _has_pending(settings: Settings, code: str) -> bool:
    return bool(await pending(settings, code))


async def test_three_schedulers_and_workers_racing_make_one_tick_per_fire_time(
    test_settings: Settings, db: Database
) -> None:
    """Three replicas reconcile and work at once: every fire time runs exactly once."""
    now = datetime.now(UTC)
    codes = [f"R{i:03d}" for i in range(60)]
    for code in codes:
        # Due fire times in the recent past make every replica want to run them right now.
        await add_region(db, code, "* * * * *", schedule_since=now - timedelta(minutes=3))
    async with (
        runtime(test_settings, "a") as a,
        runtime(test_settings, "b") as b,
        runtime(test_settings, "c") as c,
    ):
        await asyncio.gather(reconcile(a), reconcile(b), reconcile(c))
        async with running_worker(a), running_worker(b), running_worker(c):

            async def all_ran() -> bool:
                rows = await ledger(db)
                return sum(r["status"] == "ok" for r in rows) >= len(codes)

            await eventually(all_ran, timeout=30)
            await asyncio.gather(reconcile(a), reconcile(b), reconcile(c))
        rows = await ledger(db)
        ok = [r for r in rows if r["status"] == "ok"]
        assert len(ok) == len(codes)
        assert {r["region_code"] for r in ok} == set(codes)
        assert all(r["attempt"] == 1 for r in ok)
        assert {r["worker"] for r in ok} <= {"a", "b", "c"}
        # Each executed job returned "ok" once; none ran a second time as "already-done".
        results = [await Job(r["job_id"], a.redis).result(timeout=1) for r in ok]
        assert results == ["ok"] * len(codes)
        missed = [r for r in rows if r["status"] == "missed"]
        assert len(missed) == len({(r["region_code"], r["scheduled_for"]) for r in missed})


async def test_a_wiped_redis_is_rebuilt_from_postgres_within_seconds(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    """Redis restarted empty: the scheduler notices without waiting for its interval."""
    await add_region(db, "DURABLE", "0 3 * * *")
    stop = asyncio.Event()
    async with runtime(test_settings) as rt:
        assert rt.settings.region_refresh_interval_ms >= 60_000  # the interval is no help here
        loop_task = asyncio.create_task(Scheduler(rt).run(stop))
        try:
            await eventually(lambda: _has_pending(test_settings, "DURABLE"), timeout=10)
            # Everything this deployment had in Redis, gone (as FLUSHALL would do to it).
            keys = [k async for k in redis.scan_iter(match=f"{test_settings.redis_prefix}:*")]
            keys += [
                k async for k in redis.scan_iter(match=f"arq:*:{test_settings.redis_prefix}:*")
            ]
            await redis.delete(*keys)
            assert not await _has_pending(test_settings, "DURABLE")
            await eventually(lambda: _has_pending(test_settings, "DURABLE"), timeout=5)
        finally:
            stop.set()
            await loop_task
