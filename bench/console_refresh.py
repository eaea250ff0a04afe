"""Console refresh time with 10,000 regions: the Regions screen's data load and table rebuild.

    python -m bench.console_refresh [--regions 10000] [--rounds 10]

(DATABASE_URL / REDIS_URL: servers to use; unset, embedded ones start in a temp folder.)

A scratch database (bench/support.py) with N regions (720 distinct cron strings, four
timezones) and one ledger row per region; the console runs headless at 80x24 with Pilot; we
time what one refresh does: `fetch()` (the queries and next-run computation, in the worker)
and `show()` (the table rebuild on the UI loop), cold (first load) and warm (every 2 s after).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from bench.support import bench_settings, machine
from console.app import CreatordeckApp
from console.data import checked_schedule
from console.screens.regions import MAX_TABLE_ROWS, RegionsScreen
from storage.database import Database
from storage.models import JobRun, Region
from storage.settings import Settings

TIMEZONES = ("UTC", "America/Detroit", "America/Chicago", "America/Los_Angeles")


async def seed(settings: Settings, count: int) -> None:
    db = Database(settings)
    now = datetime.now(UTC)
    regions = [
        {
            "code": f"REGION_{i:05d}",
            "name": f"Region {i}",
            "cron": f"{i % 60} */{1 + i % 12} * * *",
            "timezone": TIMEZONES[i % len(TIMEZONES)],
            "active": i % 10 != 0,
            "schedule_since": now,
        }
        for i in range(count)
    ]
    runs = [
        {
            "kind": "tick",
            "region_code": f"REGION_{i:05d}",
            "scheduled_for": now - timedelta(minutes=i % 600),
            "started_at": now,
            "finished_at": now,
            "status": ("ok", "failed", "skipped")[i % 3],
            "lag_ms": i % 5000,
            "duration_ms": 100 + i % 900,
            "attempt": 1,
        }
        for i in range(count)
    ]
    try:
        async with db.session() as session:
            for start in range(0, count, 2000):
                await session.execute(insert(Region), regions[start : start + 2000])
                await session.execute(insert(JobRun), runs[start : start + 2000])
            await session.commit()
    finally:
        await db.dispose()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def measure(settings: Settings, count: int, rounds: int) -> None:
    app = CreatordeckApp(settings, landing="regions")
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 120
        while not (isinstance(app.screen, RegionsScreen) and app.screen.loads >= 1):
            if time.monotonic() > deadline:
                raise SystemExit("the Regions screen did not load within 120 s")
            await pilot.pause(0.05)
        screen = app.screen
        assert isinstance(screen, RegionsScreen)
        assert len(screen.rows) == count, len(screen.rows)
        assert screen.table.row_count == min(count, MAX_TABLE_ROWS), screen.table.row_count

        # Keep the screen's own 2 s refresh out of the measurements (it would run alongside):
        # let a load in flight finish, then hold the flag that stops the timer starting one.
        while screen._loading:
            await pilot.pause(0.01)
        screen._loading = True
        # Cold: fresh caches and an empty table, as on the first load.
        checked_schedule.cache_clear()
        screen._next_runs.__init__()  # type: ignore[misc]
        screen.shown = []
        screen.table.clear()
        t0 = time.perf_counter()
        data = await screen.fetch()
        t1 = time.perf_counter()
        screen.show(data)
        t2 = time.perf_counter()
        await pilot.pause()  # Textual lays out and paints the new table
        t3 = time.perf_counter()
        cold_fetch, cold_show, cold_paint = t1 - t0, t2 - t1, t3 - t2

        fetches, shows, totals = [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            data = await screen.fetch()
            t1 = time.perf_counter()
            screen.show(data)
            t2 = time.perf_counter()
            await pilot.pause()
            fetches.append(t1 - t0)
            shows.append(t2 - t1)
            totals.append(t2 - t0)

        # A refresh where 1% of the regions changed (a tick finished): in-place cell updates.
        changed = [
            row if i % 100 else type(row)(**{**_fields(row), "last_status": "running"})
            for i, row in enumerate(screen.rows)
        ]
        t0 = time.perf_counter()
        screen.show(changed)
        partial = time.perf_counter() - t0

        # End to end through the worker, as the 2 s timer does it.
        screen._loading = False
        before = screen.loads
        t0 = time.perf_counter()
        screen.request_reload()
        while screen.loads == before:
            await pilot.pause(0.001)
        end_to_end = time.perf_counter() - t0

    print(
        f"console refresh, {count} regions loaded, {min(count, MAX_TABLE_ROWS)} in the table,"
        " 80x24 headless (Textual Pilot)"
    )
    print(
        f"  cold first load : fetch {ms(cold_fetch)} + table build {ms(cold_show)}"
        f" + layout/paint {ms(cold_paint)}"
    )
    print(
        f"  warm refresh    : fetch p50 {ms(statistics.median(fetches))}"
        f" max {ms(max(fetches))}; show p50 {ms(statistics.median(shows))}"
        f" max {ms(max(shows))}; total p50 {ms(statistics.median(totals))} ({rounds} rounds)"
    )
    print(f"  warm fetches    : {' '.join(f'{f * 1000:.0f}' for f in fetches)} ms")
    print(f"  1% rows changed : show {ms(partial)} (in-place cell updates)")
    print(f"  worker reload   : {ms(end_to_end)} from request to rows on screen")


def _fields(row: object) -> dict[str, object]:
    return {name: getattr(row, name) for name in row.__slots__}  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--regions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with bench_settings() as settings:
        t0 = time.perf_counter()
        asyncio.run(seed(settings, args.regions))
        print(f"seeded {args.regions} regions + ledger rows in {time.perf_counter() - t0:.1f}s")
        print(f"machine: {machine()}")
        asyncio.run(measure(settings, args.regions, args.rounds))


if __name__ == "__main__":
    main()
