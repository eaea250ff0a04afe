"""The region tick (a shard of regions per job): ledger rows, overlap policies, stale jobs and
takeovers after a dead worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine import tick_queue
from engine.jobs import tick as tick_module
from engine.jobs.tick import run_shard
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Region, RunStatus
from storage.queries import regions, runs
from storage.settings import Settings
from tests.support.engine import add_region, eventually, ledger, running_worker, runtime


async def run_tick(rt: Runtime, code: str, fire: datetime, job_id: str, manual: bool) -> str:
    """Run the shard job of `code` at `fire` and say what became of `code`'s fire time."""
    shard = tick_queue.shard_of(rt.settings, code)
    report = await run_shard(rt, fire, shard, None, job_id, manual)
    return report.line()


async def previous_run_still_going(db: Database, code: str, fire: datetime, job: str) -> int:
    """A run of `code` at an earlier fire time that has not completed (its batches still run)."""
    async with db.transaction() as session:
        claim = await runs.claim(
            session,
            kind="tick",
            region_code=code,
            scheduled_for=fire - timedelta(minutes=1),
            job_id=job,
            worker="other",
        )
    assert claim is not None
    return claim.run_id


def upcoming_minute() -> datetime:
    """A fire time that is not late whenever the test runs (the next minute boundary)."""
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


async def minutely(db: Database, code: str = "TICKER", **fields: object) -> Region:
    return await add_region(
        db,
        code,
        "* * * * *",
        schedule_since=datetime.now(UTC) - timedelta(minutes=10),
        **fields,
    )


async def test_a_tick_writes_its_ledger_row_and_enqueues_its_successor(
    test_settings: Settings, db: Database
) -> None:
    MINUTE = upcoming_minute()
    await minutely(db)
    async with runtime(test_settings, "worker-1") as rt:
        outcome = await run_tick(rt, "TICKER", MINUTE, "job-1", manual=False)
        successors = [r.fire for r in await tick_queue.pending_ticks(rt.redis, test_settings)]
    [row] = await ledger(db, "TICKER")
    assert outcome == "ok"
    assert (row["status"], row["attempt"], row["worker"], row["job_id"]) == (
        "ok",
        1,
        "worker-1",
        "job-1",
    )
    assert row["finished_at"] >= row["started_at"]
    assert row["lag_ms"] >= 0 and row["duration_ms"] >= 0
    assert successors == [MINUTE + timedelta(minutes=1)]


async def test_overlap_skip_records_a_skipped_run(test_settings: Settings, db: Database) -> None:
    MINUTE = upcoming_minute()
    await minutely(db)
    await previous_run_still_going(db, "TICKER", MINUTE, "earlier-job")
    async with runtime(test_settings) as rt:
        outcome = await run_tick(rt, "TICKER", MINUTE, "job-2", manual=False)
    rows = await ledger(db, "TICKER")
    assert outcome == "skipped"
    assert rows[-1]["status"] == "skipped" and rows[-1]["scheduled_for"] == MINUTE
    assert rows[-1]["error"] == "previous tick still running (earlier-job)"


async def test_overlap_buffer_keeps_one_waiting_and_skips_the_rest(
    test_settings: Settings, db: Database
) -> None:
    await minutely(db, overlap_policy="buffer")
    previous, MINUTE = upcoming_minute(), upcoming_minute() + timedelta(minutes=1)
    earlier = await previous_run_still_going(db, "TICKER", previous, "earlier-job")
    shard = tick_queue.shard_of(test_settings, "TICKER")
    async with runtime(test_settings) as rt:
        assert await run_tick(rt, "TICKER", previous, "job-shard", manual=False) == "buffered"
        # The waiting fire time sits in a deferred follow-up job, not in a worker slot.
        waiting = [r for r in await tick_queue.pending_ticks(rt.redis, test_settings) if r.buffered]
        assert [(w.shard, w.fire) for w in waiting] == [(shard, previous)]
        assert await run_tick(rt, "TICKER", MINUTE, "job-extra", manual=False) == "skipped"
        follow_up = waiting[0].job_id
        report = await run_shard(rt, previous, shard, ["TICKER"], follow_up, False)
        assert report.waiting == ["TICKER"]  # still behind the earlier run
        async with db.transaction() as session:
            await runs.finish(session, earlier, status=RunStatus.OK)
        report = await run_shard(rt, previous, shard, ["TICKER"], follow_up, False)
        assert report.line() == "ok" and report.waiting == []
    rows = await ledger(db, "TICKER")
    assert [(r["scheduled_for"], r["status"]) for r in rows][1:] == [
        (previous, "ok"),
        (MINUTE, "skipped"),
    ]


async def test_a_job_for_an_old_schedule_does_nothing(
    test_settings: Settings, db: Database
) -> None:
    MINUTE = upcoming_minute()
    await minutely(db)
    async with db.transaction() as session:
        await regions.update_region(session, "TICKER", actor="test", cron="0 0 1 1 *")
    async with runtime(test_settings) as rt:
        assert await run_tick(rt, "TICKER", MINUTE, "job-old", manual=False) == "stale"
        async with db.transaction() as session:
            await regions.update_region(session, "TICKER", actor="test", active=False)
        assert await run_tick(rt, "TICKER", MINUTE, "job-old", manual=False) == "paused"
        # A manual run of a region deleted meanwhile; a shard left without regions.
        gone = await run_shard(rt, MINUTE, None, ["NOWHERE"], "job-gone", True)
        assert gone.line() == "gone"
        others = (
            tick_queue.shard_of(test_settings, "TICKER") + 1
        ) % test_settings.engine.tick_shards
        assert (await run_shard(rt, MINUTE, others, None, "job-none", False)).line() == "empty"
    assert await ledger(db) == []


async def test_a_run_left_running_by_a_dead_worker_is_taken_over_once(
    test_settings: Settings, db: Database
) -> None:
    MINUTE = upcoming_minute()
    await minutely(db)
    async with db.transaction() as session:
        # The shard's first attempt claimed the fire time, then its worker died.
        claim = await runs.claim(
            session,
            kind="tick",
            region_code="TICKER",
            scheduled_for=MINUTE,
            job_id="job-3",
            worker="dead-worker",
        )
    assert claim is not None and claim.attempt == 1
    async with runtime(test_settings, "live-worker") as rt:
        assert await run_tick(rt, "TICKER", MINUTE, "job-3", manual=False) == "ok"
        # arq may deliver the same job once more: the ledger answers that it is done.
        assert await run_tick(rt, "TICKER", MINUTE, "job-3", manual=False) == "already-done"
    [row] = await ledger(db, "TICKER")
    assert (row["status"], row["attempt"], row["worker"]) == ("ok", 2, "live-worker")


async def test_a_failing_tick_is_recorded_with_its_error(
    test_settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    MINUTE = upcoming_minute()
    await minutely(db)

    async def broken(*_args: object) -> dict[str, object]:
        raise ValueError("platform returned nonsense")

    monkeypatch.setattr(tick_module, "fan_out", broken)  # fault injection
    async with runtime(test_settings) as rt:
        assert await run_tick(rt, "TICKER", MINUTE, "job-4", manual=False) == "failed"
    [row] = await ledger(db, "TICKER")
    assert row["status"] == "failed"
    assert row["error"] == "ValueError('platform returned nonsense')"


async def test_run_now_goes_through_the_queue_even_when_paused(
    test_settings: Settings, db: Database
) -> None:
    await minutely(db, active=False)
    now = datetime.now(UTC).replace(microsecond=0)
    async with runtime(test_settings) as rt:
        await tick_queue.enqueue_ticks(
            rt.redis, test_settings, [tick_queue.TickRequest("TICKER", now, True)]
        )
        async with running_worker(rt):

            async def done() -> bool:
                return any(r["status"] == "ok" for r in await ledger(db, "TICKER"))

            await eventually(done)
    [row] = await ledger(db, "TICKER")
    assert row["manual"] is True and row["scheduled_for"] == now


async def test_a_tick_behind_a_newer_due_fire_time_defers_to_the_catch_up_policy(
    test_settings: Settings, db: Database
) -> None:
    """Redis kept a deferred tick while no engine ran: it must not chain through every gap."""
    MINUTE = upcoming_minute()
    await minutely(db)
    floor = MINUTE - timedelta(minutes=1)
    stale_fire = floor - timedelta(minutes=3)
    async with runtime(test_settings) as rt:
        outcome = await run_tick(rt, "TICKER", stale_fire, "job-late", manual=False)
        pending = [r.fire for r in await tick_queue.pending_ticks(rt.redis, test_settings)]
    rows = await ledger(db, "TICKER")
    assert outcome == "missed"
    latest_due = max(r["scheduled_for"] for r in rows) + timedelta(minutes=1)
    assert [r["status"] for r in rows] == ["missed"] * len(rows)
    assert stale_fire in {r["scheduled_for"] for r in rows}
    # The run-once policy coalesced what was owed into one run of the latest due fire time.
    assert latest_due in pending and latest_due >= floor


async def test_a_claim_whose_shard_job_was_lost_is_swept_back_and_run_once(
    test_settings: Settings, db: Database
) -> None:
    """A shard claimed its regions, then died, and Redis lost its job: a full pass re-creates
    the job, whose run takes the claim over; a second sweep finds nothing to do."""
    from engine.scheduler import sweep_ledger
    from storage.queries import ticks

    MINUTE = upcoming_minute()
    await minutely(db)
    async with db.session() as session:
        await ticks.claim_many(
            session,
            region_codes=["TICKER"],
            fire=MINUTE,
            job_id="lost-job",
            worker="dead-worker",
            manual=False,
            now=MINUTE - timedelta(hours=1),  # claimed long ago, never fanned out
        )
        await session.commit()
    async with runtime(test_settings, "sweeper") as rt:
        assert await tick_queue.pending_ticks(rt.redis, test_settings) == []
        assert await sweep_ledger(rt) == (1, 0)
        [ref] = await tick_queue.pending_ticks(rt.redis, test_settings)
        assert (ref.shard, ref.fire) == (tick_queue.shard_of(test_settings, "TICKER"), MINUTE)
        report = await run_shard(rt, MINUTE, ref.shard, None, ref.job_id, False)
        assert report.line() == "ok"
        assert await sweep_ledger(rt) == (0, 0)
    [row] = await ledger(db, "TICKER")
    assert (row["status"], row["attempt"], row["worker"]) == ("ok", 2, "sweeper")
