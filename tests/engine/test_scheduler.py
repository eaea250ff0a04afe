"""Reconciling the region table into deferred tick jobs, on real Postgres and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from arq.jobs import Job
from redis.asyncio import Redis

from engine import tick_queue
from engine.scheduler import Scheduler, reconcile
from storage.database import Database
from storage.queries import regions
from storage.settings import Settings
from tests.support.engine import (
    add_region,
    eventually,
    ledger,
    running_worker,
    runtime,
    set_region,
)


async def pending(settings: Settings, code: str | None = None) -> list[datetime]:
    """Fire times queued for `code`'s shard (each of these tests has one region per shard)."""
    async with runtime(settings) as rt:
        refs = await tick_queue.pending_ticks(rt.redis, settings)
    shard = None if code is None else tick_queue.shard_of(settings, code)
    return sorted(ref.fire for ref in refs if code is None or ref.shard == shard)


async def test_new_region_gets_its_next_fire_time_enqueued(
    test_settings: Settings, db: Database
) -> None:
    now = datetime.now(UTC)
    await add_region(db, "DETROIT_METRO", "0 3 * * *", schedule_since=now)
    async with runtime(test_settings) as rt:
        report = await reconcile(rt, now=now)
        again = await reconcile(rt, now=now)
    expected = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if expected <= now:
        expected += timedelta(days=1)
    assert await pending(test_settings) == [expected]
    assert (report.enqueued, again.enqueued) == (1, 0)


async def test_cron_change_replaces_the_pending_tick(test_settings: Settings, db: Database) -> None:
    now = datetime.now(UTC)
    await add_region(db, "LA", "0 */12 * * *", schedule_since=now)
    async with runtime(test_settings) as rt:
        await reconcile(rt, now=now)
        async with db.transaction() as session:
            await regions.update_region(session, "LA", actor="test", now=now, cron="30 1 * * *")
        report = await reconcile(rt, only={"LA"}, now=now)
    fires = await pending(test_settings, "LA")
    assert len(fires) == 1 and (fires[0].hour, fires[0].minute) == (1, 30)
    assert report.removed == 1


async def test_pause_resume_and_delete(test_settings: Settings, db: Database) -> None:
    # One "now" for the data and every reconcile: no 5-minute boundary can fall in between.
    now = datetime.now(UTC)
    await add_region(db, "CHI", "*/5 * * * *", schedule_since=now)
    async with runtime(test_settings) as rt:
        await reconcile(rt, now=now)
        assert len(await pending(test_settings, "CHI")) == 1
        async with db.transaction() as session:
            await regions.update_region(session, "CHI", actor="test", now=now, active=False)
        await reconcile(rt, now=now)
        assert await pending(test_settings, "CHI") == []
        async with db.transaction() as session:
            await regions.update_region(session, "CHI", actor="test", now=now, active=True)
        await reconcile(rt, now=now)
        assert len(await pending(test_settings, "CHI")) == 1
        async with db.transaction() as session:
            await regions.delete_region(session, "CHI", actor="test")
        await reconcile(rt, now=now)
    assert await pending(test_settings, "CHI") == []


async def test_invalid_cron_row_is_skipped_and_reported(
    test_settings: Settings, db: Database
) -> None:
    now = datetime.now(UTC)
    await add_region(db, "GOOD", "0 * * * *", schedule_since=now)
    await add_region(db, "BAD", "0 * * * *", schedule_since=now)
    async with runtime(test_settings) as rt:
        await reconcile(rt, now=now)
        await set_region(db, "BAD", cron="61 * * * *")  # as a bad psql edit would
        report = await reconcile(rt, now=now)
    assert report.invalid == {"BAD": "invalid minute field '61'"}
    assert await pending(test_settings, "BAD") == []
    assert len(await pending(test_settings, "GOOD")) == 1


async def test_catch_up_run_once_coalesces_missed_fire_times(
    test_settings: Settings, db: Database
) -> None:
    # An hourly fire time half an hour back: the worker's tick runs it with no other fire time
    # due before or after it while the test runs, whatever minute of the hour it starts in.
    last = (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)
    # Fire times owed: last-4h … last, five of them.
    await add_region(
        db, "HOURLY", f"{last.minute} * * * *", schedule_since=last - timedelta(hours=4, minutes=30)
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
    assert rows[-1]["scheduled_for"] == last
    assert len({r["scheduled_for"] for r in rows}) == 5


async def test_catch_up_missed_policy_records_every_missed_fire_time(
    test_settings: Settings, db: Database
) -> None:
    # Half past the hour: three hours and a minute back from the real now held four hourly fire
    # times whenever the test ran in an hour's first minute (it failed then, not "under load").
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
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


async def test_an_edit_reaches_the_scheduler_by_notify_not_by_its_interval(
    test_settings: Settings, db: Database
) -> None:
    """The edit is picked up on NOTIFY (well under a second on a quiet machine; bench/ measures
    it). The test only bounds it far below the interval, so a busy machine cannot fail it."""
    # The loop runs on the real clock: daily fire times hours away from it, before and after the
    # edit, so no fire time falls due while the test runs, whatever the time of day.
    soon = datetime.now(UTC) + timedelta(hours=6)
    later = soon + timedelta(hours=6)
    await add_region(db, "LIVE", f"{soon.minute} {soon.hour} * * *")
    stop = asyncio.Event()
    async with runtime(test_settings) as rt:
        scheduler = Scheduler(rt)
        assert scheduler.interval_s >= 60  # waiting for the interval would time out below
        loop_task = asyncio.create_task(scheduler.run(stop))
        try:
            await eventually(lambda: _has_pending(test_settings, "LIVE"), timeout=10)
            await asyncio.wait_for(scheduler.listening.wait(), timeout=10)
            async with db.transaction() as session:
                await regions.update_region(
                    session, "LIVE", actor="test", cron=f"{later.minute} {later.hour} * * *"
                )

            async def moved() -> bool:
                fires = await pending(test_settings, "LIVE")
                return [(f.hour, f.minute) for f in fires] == [(later.hour, later.minute)]

            await eventually(moved, timeout=10, every=0.02)
        finally:
            stop.set()
            await loop_task


async def _has_pending(settings: Settings, code: str) -> bool:
    return bool(await pending(settings, code))


async def test_three_schedulers_and_workers_racing_make_one_tick_per_fire_time(
    test_settings: Settings, db: Database
) -> None:
    """Three replicas reconcile and work at once: every fire time runs exactly once."""
    # Three fire times owed, the three minutes before this one, and the next an hour after the
    # first of them: whichever second the test starts at, and however long a busy machine makes
    # it take, the same three are owed and no new one comes due while it runs.
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    owed = [minute - timedelta(minutes=m) for m in (3, 2, 1)]
    cron = ",".join(str(m) for m in sorted(f.minute for f in owed)) + " * * * *"
    codes = [f"R{i:03d}" for i in range(60)]
    for code in codes:
        # Due fire times in the recent past make every replica want to run them right now.
        await add_region(db, code, cron, schedule_since=owed[0] - timedelta(seconds=30))
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
        # Run-once catch-up: the latest owed fire time runs, once per region; the others are
        # recorded missed, once each.
        assert sorted((r["region_code"], r["scheduled_for"]) for r in ok) == [
            (code, owed[-1]) for code in codes
        ]
        assert all(r["attempt"] == 1 for r in ok)
        assert {r["worker"] for r in ok} <= {"a", "b", "c"}
        # Each executed job returned "ok" once; none ran a second time as "already-done".
        results = [await Job(r["job_id"], a.redis).result(timeout=1) for r in ok]
        assert results == ["ok"] * len(codes)
        missed = sorted(
            (r["region_code"], r["scheduled_for"]) for r in rows if r["status"] == "missed"
        )
        assert missed == [(code, fire) for code in codes for fire in owed[:-1]]
        assert len(rows) == len(ok) + len(missed)


async def test_a_wiped_redis_is_rebuilt_from_postgres_within_seconds(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    """Redis restarted empty: the scheduler notices without waiting for its interval."""
    await add_region(db, "DURABLE", "0 3 * * *")
    stop = asyncio.Event()
    async with runtime(test_settings) as rt:
        assert (
            rt.settings.engine.region_refresh_interval_ms >= 60_000
        )  # the interval is no help here
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
