"""Queues screen with 100,000 queued jobs: page loads, paging and key response.

    python -m bench.queues_screen [--jobs 100000] [--rounds 10] [--no-header]

(DATABASE_URL / REDIS_URL: servers to use; unset, embedded ones start in a temp folder.)

A scratch database and key prefix (bench/support.py); N fetch jobs enqueued with the engine's
own batched enqueue; the console runs headless at 80x24 with Pilot. We time the screen's data
load (`fetch()`: counts of all four queues + one page of jobs) at the head, middle and tail
of the queue, the table rebuild (`show()`), a first open through `:queues`, paging with `n`
through the worker, and the round trip of a cursor key while loads run. For comparison, the
header's queue depth (engine.queue_admin.counts, a SCAN for running jobs) is timed too.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench.support import LoopStalls, bench_settings, machine
from console.app import CreatordeckApp
from console.data.common import load_engine_status
from console.screens.queues import QueuesScreen
from console.widgets.status_header import StatusHeader
from engine import fetch_queue, queue_admin, queues
from storage.settings import Settings

IDLE_PROBE_S = 3.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def seed(settings: Settings, count: int) -> float:
    redis = await queues.connect(settings)
    try:
        base = int(time.time() * 1000) + 3_600_000
        jobs = [
            fetch_queue.FetchRequest(
                fetch_queue.fetch_job_id(settings, 1 + n // 1000, n % 1000),
                1 + n // 1000,
                n % 1000,
                "mock",
                0,
                list(range(n * 50, n * 50 + 50)),  # a batch of 50 creator ids, as the engine
                defer_until_ms=None if n % 2 else base + n,  # half ready, half deferred
            )
            for n in range(count)
        ]
        t0 = time.perf_counter()
        added = await fetch_queue.enqueue_fetches(redis, settings, jobs)
        took = time.perf_counter() - t0
        assert added == count, added
        return took
    finally:
        await redis.aclose()


async def measure(settings: Settings, count: int, rounds: int, header: bool) -> None:
    app = CreatordeckApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        if not header:
            # The status header's own refresh (engine.queue_admin.counts SCANs the keyspace)
            # competes for the loop and Redis; hold it to see the screen's share alone.
            for widget in app.query(StatusHeader):
                widget._loading = True
        t0 = time.perf_counter()
        await app.open_screen("queues", "fetch")
        if not header:
            for widget in app.screen.query(StatusHeader):
                widget._loading = True
        deadline = time.monotonic() + 120
        while not (
            isinstance(app.screen, QueuesScreen)
            and app.screen.queue == "fetch"
            and app.screen.table.row_count > 0
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the Queues screen did not load within 120 s")
            await pilot.pause(0.005)
        first_open = time.perf_counter() - t0
        screen = app.screen
        assert isinstance(screen, QueuesScreen)
        assert screen.view is not None and screen.view.page is not None
        assert screen.view.page.counts.total == count, screen.view.page.counts

        while screen._loading:  # keep the 2 s timer's loads out of the timings below
            await pilot.pause(0.01)
        screen._loading = True
        results: dict[str, list[float]] = {}
        shows: list[float] = []
        for label, offset in (
            ("head", 0),
            ("middle", count // 2),
            ("tail", count - queue_admin.PAGE_SIZE),
        ):
            screen.page_offset = offset
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                data = await screen.fetch()
                t1 = time.perf_counter()
                screen.shown = []  # force a full rebuild, as a page change does
                screen.show(data)
                t2 = time.perf_counter()
                times.append(t1 - t0)
                shows.append(t2 - t1)
            results[label] = times

        # Paging through the worker, as a person does it.
        screen.page_offset = 0
        screen._loading = False
        screen.request_reload()
        await pilot.pause(0.3)
        pages = []
        for _ in range(rounds):
            before = screen.jobs[0].job_id if screen.jobs else None
            t0 = time.perf_counter()
            await pilot.press("n")
            while not screen.jobs or screen.jobs[0].job_id == before:
                await pilot.pause(0.001)
            pages.append(time.perf_counter() - t0)

        # The UI loop while loads keep running: a 5 ms ticker on the app's loop records how
        # late it wakes (a stall would delay every key press by as much).
        # The baseline: the same ticker while the screen is idle, as long (what the machine
        # itself adds on a shared host).
        screen._loading = True
        idle_probe = LoopStalls.start()
        await asyncio.sleep(IDLE_PROBE_S)
        idle_gaps = await idle_probe.stop()
        screen._loading = False

        probe = LoopStalls.start()
        for n in range(rounds * 3):
            loads_before = screen.loads
            screen.page_offset = (n * 7919 * queue_admin.PAGE_SIZE) % count
            screen.request_reload()
            while screen.loads == loads_before:
                await pilot.pause(0.001)
        gaps = await probe.stop()

        depth = []
        redis = await app.queue_pool()
        for _ in range(rounds):
            t0 = time.perf_counter()
            await load_engine_status(redis, settings)
            depth.append(time.perf_counter() - t0)

    state = "refreshing" if header else "held (--no-header)"
    print(
        f"queues screen, {count} jobs in the fetch queue, 80x24 headless (Textual Pilot),"
        f" status header {state}"
    )
    print(f"  first open (:queues fetch → rows on screen): {ms(first_open)}")
    for label, times in results.items():
        print(
            f"  fetch() {label:<6}: p50 {ms(statistics.median(times))} max {ms(max(times))}"
            f" ({rounds} rounds; counts of 4 queues + a page of {queue_admin.PAGE_SIZE} jobs)"
        )
    print(
        f"  show() {queue_admin.PAGE_SIZE} rows: p50 {ms(statistics.median(shows))}",
        f"max {ms(max(shows))}",
    )
    print(f"  `n` next page  : p50 {ms(statistics.median(pages))} max {ms(max(pages))}")
    print(
        f"  UI loop stall  : p99 {ms(gaps[int(len(gaps) * 0.99)])} max {ms(gaps[-1])}"
        f" over {rounds * 3} page loads at random offsets (5 ms ticker)"
    )
    print(
        f"  baseline stall : p99 {ms(idle_gaps[int(len(idle_gaps) * 0.99)])}"
        f" max {ms(idle_gaps[-1])} while idle for {IDLE_PROBE_S:.0f} s (the machine's own noise)"
    )
    print(
        f"  header depth   : p50 {ms(statistics.median(depth))} max {ms(max(depth))}"
        " (engine.queue_admin.counts: SCAN for running jobs; for comparison)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--no-header", action="store_true", help="hold the status header's refresh meanwhile"
    )
    args = parser.parse_args()
    with bench_settings() as settings:
        took = asyncio.run(seed(settings, args.jobs))
        print(f"enqueued {args.jobs} fetch jobs in {took:.1f}s")
        print(f"machine: {machine()}")
        asyncio.run(measure(settings, args.jobs, args.rounds, not args.no_header))


if __name__ == "__main__":
    main()
