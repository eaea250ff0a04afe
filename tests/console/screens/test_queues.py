"""The Queues screen driven with Pilot against the real test servers, plus its snapshot."""

from __future__ import annotations

import asyncio
import pickle
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from textual.pilot import Pilot

from console.app import CreatordeckApp
from console.screens.dialogs import ConfirmModal
from console.screens.queues import JobDetailModal, QueuesScreen
from engine import fetch_queue, queues, tick_queue
from engine.tick_queue import TickRequest, enqueue_ticks
from storage.settings import Settings
from tests.console.screens.test_snapshots import settled
from tests.console.test_app import (
    FROZEN,
    SIZE,
    frozen_clock,
    make_app,
    notifications,
    type_text,
    wait_for_db,
    wait_until,
)

FAR = FROZEN + timedelta(days=3650)  # deferred by the console's clock (FROZEN)


async def open_queues(pilot: Pilot[Any], loads: int = 1) -> QueuesScreen:
    await pilot.app.open_screen("queues")  # type: ignore[attr-defined]
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, QueuesScreen) and pilot.app.screen.loads >= loads,
        "the Queues screen to load",
    )
    screen = pilot.app.screen
    assert isinstance(screen, QueuesScreen)
    return screen


async def reloaded(pilot: Pilot[Any], screen: QueuesScreen, condition: Any, what: str) -> None:
    """Wait for a load that started after now and satisfies `condition`."""
    start = screen.loads
    await wait_until(pilot, lambda: screen.loads > start and condition(), what)


async def seed(settings: Settings, fetches: int = 150) -> None:
    redis = await queues.connect(settings)
    try:
        await enqueue_ticks(
            redis,
            settings,
            [
                TickRequest("DETROIT_METRO", FAR),
                TickRequest("CHICAGO_METRO", FAR + timedelta(hours=6)),
                TickRequest("NASHVILLE", FAR + timedelta(days=1)),
            ],
        )
        jobs = [
            fetch_queue.FetchRequest(
                fetch_queue.fetch_job_id(settings, 42, n),
                42,
                n,
                "mock",
                0,
                [n],
                defer_until_ms=int(FAR.timestamp() * 1000) + n,
            )
            for n in range(fetches)
        ]
        await fetch_queue.enqueue_fetches(redis, settings, jobs)
    finally:
        await redis.aclose()


async def test_queues_lists_pages_and_deletes_with_confirm(
    test_settings: Settings, redis: Redis
) -> None:
    await seed(test_settings)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queues(pilot)
        assert screen.queue == "ticks" and screen.table.row_count == 3
        # Scheduled ticks are their shard's job at that fire time.
        assert [j.job_id for j in screen.jobs] == [
            tick_queue.tick_job_id(test_settings, "DETROIT_METRO", FAR),
            tick_queue.tick_job_id(test_settings, "CHICAGO_METRO", FAR + timedelta(hours=6)),
            tick_queue.tick_job_id(test_settings, "NASHVILLE", FAR + timedelta(days=1)),
        ]
        await pilot.press("2")
        await wait_until(
            pilot, lambda: screen.queue == "fetch" and screen.table.row_count == 100, "page 1"
        )
        assert "jobs 1-100 of 150" in str(screen.query_one("#status-line").render())
        await pilot.press("n")
        await wait_until(pilot, lambda: screen.table.row_count == 50, "page 2")
        assert screen.jobs[0].job_id == fetch_queue.fetch_job_id(test_settings, 42, 100)
        await pilot.press("p")
        await wait_until(pilot, lambda: screen.table.row_count == 100, "back to page 1")

        # Delete the first fetch job: asks first, then it is gone from Redis.
        target = screen.jobs[0].job_id
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("y")
        name = fetch_queue.queue_name(test_settings)
        await wait_until(pilot, lambda: screen.table.row_count == 100, "the reload")

        async def gone() -> bool:
            return await redis.zscore(name, target) is None

        await wait_for_db(pilot, gone, "the job to be deleted")
        assert not await redis.exists(f"arq:job:{target}")
        await reloaded(pilot, screen, lambda: screen.jobs[0].job_id != target, "the new page")

        # The filter narrows the page; enter opens a job's detail.
        await pilot.press("slash")
        await type_text(pilot, "42, 99,")
        await wait_until(pilot, lambda: len(screen.shown) == 1, "the filter")
        await pilot.press("enter", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailModal), "the detail")
        detail = app.screen
        assert isinstance(detail, JobDetailModal)
        assert detail.detail.summary.job_id.endswith(":fetch:42:99")
        assert detail.detail.summary.function == "fetch_batch"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back to the queues")


async def test_read_only_console_refuses_queue_edits(test_settings: Settings, redis: Redis) -> None:
    await seed(test_settings, fetches=0)
    app = make_app(test_settings, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queues(pilot)
        job_id = screen.jobs[0].job_id
        for key in ("x", "a", "r", "R"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmModal)
        assert sum("read-only console" in m for m in notifications(app)) == 4
        assert await redis.zscore(tick_queue.queue_name(test_settings), job_id) is not None


async def test_retry_and_requeue_dead_letters_from_the_screen(
    test_settings: Settings, redis: Redis
) -> None:
    await seed(test_settings, fetches=0)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_queues(pilot)
        job_id = screen.jobs[0].job_id
        await pilot.press("r")
        name = tick_queue.queue_name(test_settings)
        await wait_until(
            pilot, lambda: any("moved to run now" in m for m in notifications(app)), "the retry"
        )
        score = await redis.zscore(name, job_id)
        assert score == FROZEN.timestamp() * 1000  # "now" is the console's clock
        # The ticks queue carries no dead letters; the fetch queue does (none pending here).
        await pilot.press("R")
        await wait_until(
            pilot, lambda: any("has no dead letters" in m for m in notifications(app)), "refusal"
        )
        await pilot.press("2", "R")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("y")
        await wait_until(
            pilot,
            lambda: any("0 fetch dead letter(s) requeued" in m for m in notifications(app)),
            "the requeue",
        )


def _fixed_job(function: str, args: tuple[Any, ...]) -> bytes:
    # The enqueue time is part of the payload; a fixed one keeps the snapshot stable.
    return pickle.dumps(
        {"t": None, "f": function, "a": args, "k": {}, "et": int(FROZEN.timestamp() * 1000)}
    )


def test_queues_screen_snapshot(snap_compare: Any, test_settings: Settings) -> None:
    async def seed_fixed() -> None:
        client = Redis.from_url(test_settings.redis_url or "")
        try:
            name = tick_queue.queue_name(test_settings)
            for n, code in enumerate(("DETROIT_METRO", "CHICAGO_METRO", "NASHVILLE")):
                fire = FAR + timedelta(hours=n)
                job_id = tick_queue.tick_job_id(test_settings, code, fire)
                score = int(fire.timestamp() * 1000)
                shard = tick_queue.shard_of(test_settings, code)
                payload = _fixed_job("tick", (int(fire.timestamp()), shard, None, False))
                await client.set(f"arq:job:{job_id}", payload)
                await client.zadd(name, {job_id: score})
            retried = tick_queue.tick_job_id(test_settings, "NASHVILLE", FAR + timedelta(hours=2))
            await client.set(f"arq:retry:{retried}", b"2")
        finally:
            await client.aclose()

    asyncio.run(seed_fixed())

    async def open_(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await open_queues(pilot)
        await settled(pilot)

    app = CreatordeckApp(test_settings, clock=frozen_clock)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_)
