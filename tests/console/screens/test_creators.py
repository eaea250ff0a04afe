"""The Creators and Dead letters screens, driven with Pilot against the real test servers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select
from textual.pilot import Pilot
from textual.widgets import Static

from console.data.creators import chart, sparkline
from console.screens.creators import CreatorDetailScreen, CreatorsScreen
from console.screens.dead_letters import DeadLettersScreen
from console.screens.dialogs import ConfirmModal
from console.widgets.virtual_table import VirtualTable
from engine import fetch_queue
from storage.database import Database
from storage.models import Creator, DeadLetter, FollowerSample
from storage.queries import dead_letters
from storage.settings import Settings
from tests.console.test_app import FROZEN, SIZE, make_app, wait_for_db, wait_until
from tests.support.creators import add_creators, add_region


async def open_screen(pilot: Pilot[Any], name: str, kind: type[Any]) -> Any:
    await pilot.app.open_screen(name)  # type: ignore[attr-defined]
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, kind) and pilot.app.screen.loads >= 1,
        f"{kind.__name__} to load",
    )
    return pilot.app.screen


async def _seed(db: Database) -> list[int]:
    await add_region(db)
    ids = await add_creators(db, 3)
    rows = []
    for n, cid in enumerate(ids):
        for day in range(8, -1, -1):
            rows.append(
                {
                    "creator_id": cid,
                    "observed_at": FROZEN - timedelta(days=day),
                    "followers": 1000 * (n + 1) + (8 - day) * 10,
                }
            )
    async with db.session() as session:
        await session.execute(insert(FollowerSample).values(rows))
        for n, cid in enumerate(ids):
            creator = await session.get(Creator, cid)
            assert creator is not None
            creator.followers = 1000 * (n + 1) + 80
        await session.commit()
    return ids


def test_sparkline_and_chart_scale_between_min_and_max() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5]) == "▄▄"
    lines = chart([0, 50, 100], width=3, height=2)
    assert len(lines) == 2 and lines[0][2] == "█" and lines[1][0] != " "


async def test_creators_screen_shows_change_growth_and_opens_the_chart(
    test_settings: Settings, db: Database
) -> None:
    await _seed(db)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "creators", CreatorsScreen)
        table = screen.query_one("#creators", VirtualTable)
        await wait_until(pilot, lambda: table.row_count == 3, "three creators")
        top = screen.view.rows[0]
        assert top.followers == 3080 and top.change_24h == 10 and top.change_7d == 70
        assert top.growth_7d_pct is not None and top.growth_7d_pct > 0
        assert len(top.spark) == 7  # the last 7 days
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, CreatorDetailScreen) and app.screen.loads >= 1,
            "the creator detail",
        )
        chart_text = str(app.screen.query_one("#creator-body", Static).render())
        assert "█" in chart_text and "3,080" in chart_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, CreatorsScreen), "back")
        # Status filter cycles: "active" first; then "paused" shows none.
        await pilot.press("s")
        await wait_until(pilot, lambda: screen.filters.status == "active", "active filter")
        await pilot.press("s")
        await wait_until(
            pilot, lambda: screen.filters.status == "paused" and table.row_count == 0, "paused"
        )


async def test_dead_letters_requeue_one_and_drop_all_with_confirm(
    test_settings: Settings, db: Database
) -> None:
    ids = await _seed(db)
    letters = [
        dead_letters.Letter(
            kind="fetch",
            dedupe_key=dead_letters.fetch_key(cid),
            error="not_found: account not found",
            payload={"creator_id": cid, "platform": "mock", "external_id": f"acct{n}"},
            creator_id=cid,
        )
        for n, cid in enumerate(ids[:2])
    ]
    async with db.transaction() as session:
        await dead_letters.record(session, letters)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "deadletters", DeadLettersScreen)
        await wait_until(pilot, lambda: len(screen.letters) == 2, "two letters")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("y")

        async def requeued() -> bool:
            async with db.session() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(DeadLetter)
                    .where(DeadLetter.status == "requeued")
                )
            return count == 1

        await wait_for_db(pilot, requeued, "one requeued letter")
        pool = await app.queue_pool()
        depth = await fetch_queue.depth(pool, test_settings)
        assert depth.ready + depth.deferred == 1  # its fetch job is queued

        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("n")  # declined: nothing dropped
        await wait_until(pilot, lambda: isinstance(app.screen, DeadLettersScreen), "back")
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("y")

        async def none_left() -> bool:
            async with db.session() as session:
                return await session.scalar(select(func.count()).select_from(DeadLetter)) == 0

        await wait_for_db(pilot, none_left, "every letter dropped")


async def test_every_creator_is_reachable_and_read_when_it_comes_on_screen(
    test_settings: Settings, db: Database
) -> None:
    # More creators than the old list's cap of 1,000; the table reads a window around the
    # screen, and a jump to the end reads the window there.
    await add_region(db)
    count = 1100
    ids = await add_creators(db, count)
    async with db.session() as session:
        for rank, cid in enumerate(ids):
            creator = await session.get(Creator, cid)
            assert creator is not None
            creator.followers = 10 * (count - rank)  # the first added has the most
        await session.commit()
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "creators", CreatorsScreen)
        table = screen.query_one("#creators", VirtualTable)
        await wait_until(pilot, lambda: table.row_count == count, "every creator")
        assert str(table.get_row_at(0)[0]) == "creator0"
        assert table.rows[count - 1] is None  # far off screen: not read
        table.focus()
        await pilot.press("end")
        # The tick notices the rows on screen were not read and loads the window there.
        await wait_until(pilot, lambda: screen.selected() is not None, "the last creators")
        assert screen.selected().handle == f"creator{count - 1}"
        assert str(table.get_row_at(count - 1)[0]) == f"creator{count - 1}"
        assert f"{count} shown" in str(screen.query_one("#status-line", Static).render())
