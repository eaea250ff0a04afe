"""Backfill: bounds, fire times already in the ledger skipped, running one, cancelling, two
replicas asking for the same backfill (one job and one row per fire time), and queued rows whose
job Redis lost: re-enqueued by the ledger sweep, or failed with why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from engine import redis_keys, tick_queue
from engine.backfill import (
    ENDED_JOB,
    GONE_REGION,
    BackfillSweep,
    cancel_backfill,
    request_backfill,
    sweep_backfills,
)
from engine.jobs.tick import run_shard
from engine.scheduler import sweep_ledger
from storage.database import Database
from storage.models import RunStatus
from storage.queries import runs
from storage.queries.backfill import BackfillError
from storage.queries.regions import RegionError
from storage.settings import Settings
from tests.support.clock import ManualClock
from tests.support.engine import add_region, ledger, runtime

HOUR = timedelta(hours=1)


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


async def hourly(db: Database, code: str = "BACK") -> None:
    await add_region(db, code, "0 * * * *", schedule_since=this_hour() - 3000 * HOUR)


async def backfill_jobs(rt_redis: object, settings: Settings) -> list[tick_queue.TickRef]:
    refs = await tick_queue.pending_ticks(rt_redis, settings)  # type: ignore[arg-type]
    return [ref for ref in refs if ref.backfill]


async def test_a_backfill_is_bounded_and_past_only(test_settings: Settings, db: Database) -> None:
    clock = ManualClock(this_hour())
    await hourly(db)
    async with runtime(test_settings) as rt:
        with pytest.raises(
            BackfillError, match=r"more than 1,000 fire times .*\(fire time 1,001 is at"
        ):
            await request_backfill(
                db,
                rt.redis,
                test_settings,
                "BACK",
                clock.now - 1001 * HOUR,
                clock.now,
                actor="ops",
                now=clock.now,
            )
        with pytest.raises(BackfillError, match="ends in the future"):
            await request_backfill(
                db,
                rt.redis,
                test_settings,
                "BACK",
                clock.now - HOUR,
                clock.now + HOUR,
                actor="ops",
                now=clock.now,
            )
        with pytest.raises(BackfillError, match="before it starts"):
            await request_backfill(
                db,
                rt.redis,
                test_settings,
                "BACK",
                clock.now,
                clock.now - HOUR,
                actor="ops",
                now=clock.now,
            )
        with pytest.raises(RegionError, match="no region"):
            await request_backfill(
                db,
                rt.redis,
                test_settings,
                "NOPE",
                clock.now - HOUR,
                clock.now,
                actor="ops",
                now=clock.now,
            )
        # Exactly 1,000 is allowed.
        report = await request_backfill(
            db,
            rt.redis,
            test_settings,
            "BACK",
            clock.now - 1000 * HOUR,
            clock.now,
            actor="ops",
            now=clock.now,
        )
        assert (report.fires, report.written, report.enqueued) == (1000, 1000, 1000)
    assert len(await ledger(db, "BACK")) == 1000


async def test_fire_times_in_the_ledger_are_skipped_and_a_backfill_runs_as_such(
    test_settings: Settings, db: Database
) -> None:
    clock = ManualClock(this_hour())
    await hourly(db)
    ran = clock.now.replace(minute=0) - 2 * HOUR
    async with db.transaction() as session:
        claim = await runs.claim(
            session, kind="tick", region_code="BACK", scheduled_for=ran, job_id="j", worker="w"
        )
        assert claim is not None
        await runs.finish(session, claim.run_id, status=RunStatus.OK)
    async with runtime(test_settings, "worker-1") as rt:
        report = await request_backfill(
            db,
            rt.redis,
            test_settings,
            "BACK",
            clock.now - 5 * HOUR,
            clock.now,
            actor="ops@example",
            now=clock.now,
        )
        assert (report.fires, report.written, report.skipped) == (5, 4, 1)
        jobs = await backfill_jobs(rt.redis, test_settings)
        assert sorted(ref.fire for ref in jobs) == sorted(
            clock.now.replace(minute=0) - n * HOUR for n in (0, 1, 3, 4)
        )
        job = jobs[0]
        outcome = await run_shard(rt, job.fire, None, ["BACK"], job.job_id, True, True)
        again = await run_shard(rt, job.fire, None, ["BACK"], job.job_id, True, True)
    assert (outcome.line(), again.line()) == ("ok", "already-done")
    rows = {row["scheduled_for"]: row for row in await ledger(db, "BACK")}
    assert len(rows) == 5  # never duplicated
    assert rows[ran]["trigger"] is None and rows[ran]["status"] == "ok"
    assert rows[job.fire]["status"] == "ok"
    assert (rows[job.fire]["trigger"], rows[job.fire]["requested_by"]) == (
        "backfill",
        "ops@example",
    )
    queued = [r for r in rows.values() if r["status"] == "queued"]
    assert len(queued) == 3 and all(r["trigger"] == "backfill" for r in queued)


async def test_cancel_removes_queued_jobs_and_never_touches_rows_that_ran(
    test_settings: Settings, db: Database
) -> None:
    clock = ManualClock(this_hour())
    await hourly(db)
    async with runtime(test_settings, "worker-1") as rt:
        await request_backfill(
            db,
            rt.redis,
            test_settings,
            "BACK",
            clock.now - 4 * HOUR,
            clock.now,
            actor="ops",
            now=clock.now,
        )
        first = min(await backfill_jobs(rt.redis, test_settings), key=lambda ref: ref.fire)
        assert (
            await run_shard(rt, first.fire, None, ["BACK"], first.job_id, True, True)
        ).line() == "ok"
        cancelled = await cancel_backfill(
            db, rt.redis, test_settings, "BACK", actor="ops", now=clock.now
        )
        assert cancelled == 3
        left = [
            ref for ref in await backfill_jobs(rt.redis, test_settings) if ref.fire != first.fire
        ]
        assert left == []
        # A job a worker had already taken finds nothing to claim.
        late = clock.now.replace(minute=0)  # the latest fire time of the range: cancelled
        job_id = tick_queue.tick_job_id(test_settings, "BACK", late, backfill=True)
        assert (
            await run_shard(rt, late, None, ["BACK"], job_id, True, True)
        ).line() == "already-done"
    statuses = {row["scheduled_for"]: row["status"] for row in await ledger(db, "BACK")}
    assert statuses.pop(first.fire) == "ok"
    assert set(statuses.values()) == {"cancelled"}


async def test_two_replicas_enqueue_the_same_backfill_once(
    test_settings: Settings, db: Database
) -> None:
    clock = ManualClock(this_hour())
    await hourly(db)
    async with runtime(test_settings, "a") as one, runtime(test_settings, "b") as two:
        reports = await asyncio.gather(
            *(
                request_backfill(
                    rt.db,
                    rt.redis,
                    test_settings,
                    "BACK",
                    clock.now - 6 * HOUR,
                    clock.now,
                    actor=rt.name,
                    now=clock.now,
                )
                for rt in (one, two)
            )
        )
        jobs = await backfill_jobs(one.redis, test_settings)
    assert sum(r.written for r in reports) == 6
    assert sum(r.enqueued for r in reports) == 6  # a job id that exists is left alone
    assert len(jobs) == 6 and len({ref.job_id for ref in jobs}) == 6
    assert len(await ledger(db, "BACK")) == 6


async def wipe(redis: Redis, settings: Settings) -> None:
    """Everything this deployment had in Redis, gone (as FLUSHALL, or a restart without
    persistence, would do to it); the shared server's other keys are left alone."""
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*")]
    keys += [k async for k in redis.scan_iter(match=f"arq:*:{settings.redis_prefix}:*")]
    if keys:
        await redis.delete(*keys)


async def test_queued_rows_whose_jobs_redis_lost_are_enqueued_again_never_twice(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    clock = ManualClock(this_hour())
    await hourly(db)
    async with runtime(test_settings, "worker-1") as rt:
        await request_backfill(
            db,
            rt.redis,
            test_settings,
            "BACK",
            clock.now - 4 * HOUR,
            clock.now,
            actor="ops",
            now=clock.now,
        )
        before = sorted(ref.job_id for ref in await backfill_jobs(rt.redis, test_settings))
        assert len(before) == 4
        assert await sweep_backfills(rt, clock.now) == BackfillSweep()  # all there: nothing
        await wipe(redis, test_settings)
        assert await backfill_jobs(rt.redis, test_settings) == []
        # The scheduler's ledger sweep puts them back, under the same ids.
        await sweep_ledger(rt, now=clock.now)
        after = await backfill_jobs(rt.redis, test_settings)
        assert sorted(ref.job_id for ref in after) == before
        assert await sweep_backfills(rt, clock.now) == BackfillSweep()  # and only once
        # One runs; a wipe again: only the three still queued come back.
        first = min(after, key=lambda ref: ref.fire)
        outcome = await run_shard(rt, first.fire, None, ["BACK"], first.job_id, True, True)
        assert outcome.line() == "ok"
        await wipe(redis, test_settings)
        assert await sweep_backfills(rt, clock.now) == BackfillSweep(requeued=3)
        left = await backfill_jobs(rt.redis, test_settings)
        assert sorted(ref.fire for ref in left) == sorted(r.fire for r in after if r != first)
        for ref in left:  # each runs once; a second delivery finds nothing to claim
            assert (
                await run_shard(rt, ref.fire, None, ["BACK"], ref.job_id, True, True)
            ).line() == "ok"
            assert (
                await run_shard(rt, ref.fire, None, ["BACK"], ref.job_id, True, True)
            ).line() == "already-done"
        assert await sweep_backfills(rt, clock.now) == BackfillSweep()
    rows = await ledger(db, "BACK")
    assert len(rows) == 4 and len({r["scheduled_for"] for r in rows}) == 4  # never duplicated
    assert all(r["status"] != "queued" and r["trigger"] == "backfill" for r in rows)


async def test_queued_rows_that_cannot_run_fail_with_the_reason(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    clock = ManualClock(this_hour())
    await hourly(db)
    await hourly(db, "GONE")
    async with runtime(test_settings, "worker-1") as rt:
        for code in ("BACK", "GONE"):
            await request_backfill(
                db,
                rt.redis,
                test_settings,
                code,
                clock.now - 2 * HOUR,
                clock.now,
                actor="ops",
                now=clock.now,
            )
        async with db.engine.begin() as conn:  # deleted meanwhile (its ledger rows stay)
            await conn.execute(text("DELETE FROM region WHERE code = 'GONE'"))
        await wipe(redis, test_settings)
        # One of BACK's jobs ended without claiming its row (its result is all that is left).
        ended = clock.now.replace(minute=0)
        ended_id = tick_queue.tick_job_id(test_settings, "BACK", ended, backfill=True)
        await redis.set(redis_keys.result_key(ended_id), b"-", ex=60)
        sweep = await sweep_backfills(rt, clock.now)
        assert sweep == BackfillSweep(requeued=1, failed=3)
        assert [ref.region_code for ref in await backfill_jobs(rt.redis, test_settings)] == ["BACK"]
        assert await sweep_backfills(rt, clock.now) == BackfillSweep()
    gone = await ledger(db, "GONE")
    assert {(r["status"], r["error"]) for r in gone} == {("failed", GONE_REGION)}
    back = {r["scheduled_for"]: r for r in await ledger(db, "BACK")}
    assert (back[ended]["status"], back[ended]["error"]) == (
        "failed",
        ENDED_JOB.format(job_id=ended_id),
    )
    assert [r["status"] for f, r in back.items() if f != ended] == ["queued"]  # its job is back
