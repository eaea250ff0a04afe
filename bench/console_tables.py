"""The Creators and Posts tables with 100,000 rows each: refreshes, jumps, the UI loop, RSS.

    python -m bench.console_tables [--creators 100000] [--posts 100000] [--rounds 10]

(DATABASE_URL / REDIS_URL: servers to use; unset, embedded ones start in a temp folder.)

A scratch database (bench/support.py) with N creators and M posts (0 skips a screen); the
console runs headless at 80x24 with Pilot, one screen at a time. Both tables read only a
window of rows at the scroll position (console.data.creators / publishing: WINDOW_ROWS) plus
the count of all, and the VirtualTable paints only the rows on screen. We time a warm refresh
(`fetch()` + `show()`), jumps to the last row, the first and a page down until the rows on
screen are read (not placeholders), and how late a 5 ms ticker on the UI loop wakes
meanwhile (the loop's worst stall) against the same ticker while idle (the baseline: the
machine's own noise); and the console's RSS with the table at its last row.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from bench.console_refresh import current_rss_mb, ms, p50
from bench.support import LoopStalls, bench_settings, machine
from console.app import CreatordeckApp
from console.screens.creators import CreatorsScreen
from console.screens.live import LiveScreen
from console.screens.posts import PostsScreen
from console.widgets.virtual_table import VirtualTable, Window, window_is_stale
from storage.database import Database
from storage.models import Creator, Post
from storage.settings import Settings

IDLE_PROBE_S = 3.0
BATCH = 2000


async def seed(settings: Settings, creators: int, posts: int) -> None:
    db = Database(settings)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            for start in range(0, creators, BATCH):
                await session.execute(
                    insert(Creator),
                    [
                        {
                            "platform": "mock",
                            "external_id": f"ext-{i}",
                            "handle": f"creator_{i:06d}",
                            "display_name": f"Creator {i}",
                            "status": "active" if i % 7 else "paused",
                            "followers": 1000 + i * 7,
                            "last_fetched_at": now - timedelta(minutes=i % 600),
                        }
                        for i in range(start, min(start + BATCH, creators))
                    ],
                )
            for start in range(0, posts, BATCH):
                await session.execute(
                    insert(Post),
                    [
                        {
                            "body": f"post {i}: a launch note for the week",
                            "scheduled_at": now + timedelta(minutes=i),
                            "status": "scheduled" if i % 3 else "draft",
                            "created_by": "bench",
                        }
                        for i in range(start, min(start + BATCH, posts))
                    ],
                )
    finally:
        await db.dispose()


def on_screen_loaded(table: VirtualTable[object]) -> bool:
    rows = table.rows
    return not isinstance(rows, Window) or not window_is_stale(table, rows)


async def measure(
    settings: Settings,
    landing: str,
    screen_type: type[LiveScreen],
    count: int,
    rounds: int,
    table_of: Callable[[LiveScreen], VirtualTable[object]],
) -> None:
    app = CreatordeckApp(settings, landing=landing)
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 120
        while not (isinstance(app.screen, screen_type) and app.screen.loads >= 1):
            if time.monotonic() > deadline:
                raise SystemExit(f"the {landing} screen did not load within 120 s")
            await pilot.pause(0.05)
        await pilot.pause(1.5)  # the start-up heap frozen (console/heap.py, 1 s after start)
        screen = app.screen
        assert isinstance(screen, screen_type)
        table = table_of(screen)
        assert table.row_count == count, (table.row_count, count)
        table.focus()
        while screen._loading:
            await pilot.pause(0.01)

        idle_probe = LoopStalls.start()
        await asyncio.sleep(IDLE_PROBE_S)
        idle_gaps = await idle_probe.stop()

        probe = LoopStalls.start()
        screen._loading = True  # the 2 s timer starts no load while fetch/show are timed
        refreshes = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            screen.show(await screen.fetch())
            refreshes.append(time.perf_counter() - t0)
            await pilot.pause()
        screen._loading = False

        # Jumps through the keys' actions, until the rows on screen are read (a load of the
        # window there, started by the screen's 0.25 s tick).
        jumps: dict[str, list[float]] = {"end": [], "home": [], "pagedown": []}
        for _ in range(rounds):
            for action, call in (
                ("end", table.action_last),
                ("home", table.action_first),
                ("pagedown", lambda: table.action_page(1)),
            ):
                t0 = time.perf_counter()
                call()
                await pilot.pause()
                while not on_screen_loaded(table):
                    await pilot.pause(0.005)
                jumps[action].append(time.perf_counter() - t0)
        table.action_last()
        while not on_screen_loaded(table):
            await pilot.pause(0.005)
        gaps = await probe.stop()
        rss = current_rss_mb()
        last = table.row_at_cursor()
        assert last is not None, "the last row was not read"

    print(f"{landing} table, {count} rows, all reachable, 80x24 headless (Textual Pilot)")
    print(f"  warm refresh    : fetch + show {p50(refreshes)} ({rounds} rounds)")
    for action, times in jumps.items():
        print(f"  jump {action:<9}: {p50(times)} (key action until the rows on screen are read)")
    print(
        f"  UI loop stall   : p99 {ms(gaps[int(len(gaps) * 0.99)])} max {ms(gaps[-1])}"
        " over the refreshes and jumps above (5 ms ticker)"
    )
    print(f"  RSS             : {rss:.0f} MB (the whole process, at the last of {count} rows)")
    print(
        f"  baseline (same run): UI loop stall while idle p99"
        f" {ms(idle_gaps[int(len(idle_gaps) * 0.99)])} max {ms(idle_gaps[-1])}"
        f" ({IDLE_PROBE_S:.0f} s, the machine's own noise)"
    )


def creators_table(screen: LiveScreen) -> VirtualTable[object]:
    return screen.query_one("#creators", VirtualTable)


def posts_table(screen: LiveScreen) -> VirtualTable[object]:
    return screen.query_one("#posts-list", VirtualTable)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with bench_settings() as settings:
        t0 = time.perf_counter()
        # Seed in a child process: its rows would otherwise stay in this process's heap.
        child = multiprocessing.get_context("fork").Process(
            target=asyncio.run, args=(seed(settings, args.creators, args.posts),)
        )
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(f"seeding failed (exit code {child.exitcode})")
        print(
            f"seeded {args.creators} creators and {args.posts} posts"
            f" in {time.perf_counter() - t0:.1f}s"
        )
        print(f"machine: {machine()}")
        if args.creators:
            asyncio.run(
                measure(
                    settings, "creators", CreatorsScreen, args.creators, args.rounds, creators_table
                )
            )
        if args.posts:
            asyncio.run(
                measure(settings, "posts", PostsScreen, args.posts, args.rounds, posts_table)
            )


if __name__ == "__main__":
    main()
