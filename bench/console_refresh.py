"""Console refresh time with 10,000 (or 100,000) regions: the Regions screen's load and redraw.

    python -m bench.console_refresh [--regions 10000] [--rounds 10]

(DATABASE_URL / REDIS_URL: servers to use; unset, embedded ones start in a temp folder.)

A scratch database (bench/support.py) with N regions (60 distinct cron strings, four
timezones) and one ledger row per region; the console runs headless at 80x24 with Pilot. We
time what one refresh does: `fetch()` (the region table's fingerprint, every region again as
columns only when it changed, the latest run of the rows near the screen, the snapshot built in
a thread) and `show()` (hand the snapshot to the VirtualTable), warm (every 2 s), after one
region was edited (a full read), and end to end through the worker; jumps to the last row and
back; the `/` filter (searched in a thread, then swapped in); how late a 5 ms ticker on the UI
loop wakes while refreshes and jumps run (the loop's worst stall); and the console's RSS with
every row loaded.

Baseline, measured in the same run: the same ticker while the console is idle (the machine's
own noise on a shared host), the previous read (`load_regions`, which reads the latest
run of every region: a DISTINCT ON over the whole ledger) and Textual's DataTable built with
1,000 rows (the cap the old screen had, because DataTable measures every cell).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import statistics
import time
from datetime import UTC, datetime, timedelta

from rich.text import Text
from sqlalchemy import insert
from textual.widgets import DataTable

from bench.support import LoopStalls, bench_settings, machine
from console.app import CreatordeckApp
from console.data.common import NextRunCache, load_regions
from console.screens.regions import COLUMNS, RegionsScreen, region_cells
from console.widgets.filter_bar import FilterBar
from storage.database import Database
from storage.models import JobRun, Region
from storage.queries.regions import update_region
from storage.settings import Settings

IDLE_PROBE_S = 3.0
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
            # Written a day ago: a refresh after an edit reads only what changed since.
            "updated_at": now - timedelta(days=1),
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
        async with db.transaction() as session:
            for start in range(0, count, 2000):
                await session.execute(insert(Region), regions[start : start + 2000])
                await session.execute(insert(JobRun), runs[start : start + 2000])
    finally:
        await db.dispose()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def current_rss_mb() -> float:
    """Resident memory now (Linux /proc), not the peak: seeding the scratch database in this
    process allocates far more than the console ever holds."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def p50(values: list[float]) -> str:
    return f"p50 {ms(statistics.median(values))} max {ms(max(values))}"


async def measure(settings: Settings, count: int, rounds: int) -> None:
    app = CreatordeckApp(settings, landing="regions")
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 120
        # ...and the app has frozen its start-up heap (console/heap.py, 1 s after start).
        while not (
            isinstance(app.screen, RegionsScreen)
            and app.screen.loads >= 1
            and gc.get_freeze_count()
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the Regions screen did not load within 120 s")
            await pilot.pause(0.05)
        screen = app.screen
        assert isinstance(screen, RegionsScreen)
        assert len(screen.rows) == count, len(screen.rows)
        assert screen.table.row_count == count, screen.table.row_count
        screen.table.focus()

        # Keep the screen's own 2 s refresh out of the measurements (it would run alongside):
        # let a load in flight finish, then hold the flag that stops the timer starting one.
        while screen._loading:
            await pilot.pause(0.01)
        screen._loading = True

        # The baseline of the stall figure: the same ticker with the console idle (what the
        # machine itself adds: other processes, a busy core), for as long as ~the work below.
        idle_probe = LoopStalls.start()
        await asyncio.sleep(IDLE_PROBE_S)
        idle_gaps = await idle_probe.stop()

        probe = LoopStalls.start()
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

        # A refresh after one region was edited: the fingerprint changed, so a full read and
        # a rebuild of the rows (unchanged rows are reused).
        edited = []
        for n in range(rounds):
            async with app.db.transaction() as session:
                await update_region(
                    session, screen.rows[n].code, actor="bench", name=f"edited {time.time()}"
                )
            t0 = time.perf_counter()
            data = await screen.fetch()
            screen.show(data)
            edited.append(time.perf_counter() - t0)
            await pilot.pause()

        # Jumps: the last row, the first, a page down; each until the screen is repainted.
        jumps: dict[str, list[float]] = {"end": [], "home": [], "pagedown": []}
        for _ in range(rounds):
            for action, call in (
                ("end", screen.table.action_last),
                ("home", screen.table.action_first),
                ("pagedown", lambda: screen.table.action_page(1)),
            ):
                t0 = time.perf_counter()
                call()
                await pilot.pause()
                jumps[action].append(time.perf_counter() - t0)
        assert screen.table.cursor_row > 0
        idle = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await pilot.pause()
            idle.append(time.perf_counter() - t0)

        # `/`: the filter over every region (after typing pauses), then cleared.
        filters = []
        bar = screen.query_one(FilterBar)
        for n in range(rounds):
            bar.value = f"REGION_{n:03d}"
            await pilot.pause()  # the bar's Changed message arms its settle timer: stop it,
            if bar._settle is not None:  # the bench applies the filter itself
                bar._settle.stop()
            t0 = time.perf_counter()
            await screen._apply_filter().wait()  # searched in a thread, then swapped in
            filters.append(time.perf_counter() - t0)
            assert count < 1000 or screen.matched == 100, screen.matched  # REGION_0nn00-0nn99
            await pilot.pause()
        bar.value = ""
        await pilot.pause()
        if bar._settle is not None:
            bar._settle.stop()
        await screen._apply_filter().wait()

        # End to end through the worker, as the 2 s timer does it.
        screen._loading = False
        reloads = []
        for _ in range(rounds):
            before = screen.loads
            t0 = time.perf_counter()
            screen.request_reload()
            while screen.loads == before:
                await pilot.pause(0.001)
            reloads.append(time.perf_counter() - t0)
        screen._loading = True
        gaps = await probe.stop()
        rss = current_rss_mb()

        # The baseline: the previous read of every region's latest run, and a DataTable of the
        # 1,000 rows the previous screen capped itself at.
        old_fetches = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            rows = await load_regions(app.db, app.now(), NextRunCache())
            old_fetches.append(time.perf_counter() - t0)
        table: DataTable[Text | str] = DataTable()
        for column in COLUMNS:
            table.add_column(column.label, key=column.key, width=column.width)
        t0 = time.perf_counter()
        for row in rows[:1000]:
            table.add_row(*region_cells(row), key=row.code)
        old_show = time.perf_counter() - t0

    print(
        f"console refresh, {count} regions, all {count} in the table, 80x24 headless"
        " (Textual Pilot)"
    )
    print(
        f"  warm refresh    : fetch {p50(fetches)}; show {p50(shows)};"
        f" total p50 {ms(statistics.median(totals))} ({rounds} rounds)"
    )
    print(f"  1 region edited : fetch + show {p50(edited)} (recent edits read)")
    print(f"  worker reload   : {p50(reloads)} from request to rows on screen")
    for action, times in jumps.items():
        print(f"  jump {action:<9}: {p50(times)} (key action + repaint)")
    print(f"  / filter        : {p50(filters)} (every region searched, the table re-pointed)")
    print(f"  idle repaint    : {p50(idle)} (Pilot's pause alone: subtract from the jumps)")
    print(
        f"  UI loop stall   : p99 {ms(gaps[int(len(gaps) * 0.99)])} max {ms(gaps[-1])}"
        " over the refreshes, jumps and reloads above (5 ms ticker)"
    )
    print(f"  RSS             : {rss:.0f} MB (the whole process, {count} regions on screen)")
    print(
        f"  baseline (same run): UI loop stall while idle p99"
        f" {ms(idle_gaps[int(len(idle_gaps) * 0.99)])} max {ms(idle_gaps[-1])}"
        f" ({IDLE_PROBE_S:.0f} s, the machine's own noise);"
    )
    print(
        f"    old fetch (latest run of every region) {p50(old_fetches)};"
        f" DataTable.add_row x1000 {ms(old_show)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--regions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with bench_settings() as settings:
        t0 = time.perf_counter()
        # Seed in a child process: its 200,000 dicts would otherwise stay in this process's
        # heap (CPython keeps freed arenas) and inflate the console's RSS figure.
        child = multiprocessing.get_context("fork").Process(
            target=asyncio.run, args=(seed(settings, args.regions),)
        )
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(f"seeding failed (exit code {child.exitcode})")
        print(f"seeded {args.regions} regions + ledger rows in {time.perf_counter() - t0:.1f}s")
        print(f"machine: {machine()}")
        asyncio.run(measure(settings, args.regions, args.rounds))


if __name__ == "__main__":
    main()
