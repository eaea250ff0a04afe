"""Values the console does not know are shown as unknown, and previews follow the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from textual.widgets import Static

from console.app import CreatordeckApp
from console.screens.creators import CreatorsScreen
from console.screens.dialogs import CronEditModal
from console.screens.regions import RegionsScreen
from console.widgets.virtual_table import VirtualTable
from storage.database import Database
from storage.settings import Settings
from tests.console.test_app import SIZE, loaded, wait_until
from tests.support.creators import add_creators, add_region


class MovingClock:
    """A clock the test moves by hand; it starts on a whole hour so previews are predictable."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    def __call__(self) -> datetime:
        return self.moment


async def test_a_creator_never_fetched_shows_unknown_not_zero(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db)
    await add_creators(db, 1)
    clock = MovingClock()
    app = CreatordeckApp(test_settings, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await app.open_screen("creators")
        screen = await loaded(pilot, CreatorsScreen)
        table = screen.query_one("#creators", VirtualTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the creator")
        row = [str(cell) for cell in table.get_row_at(0)]
        followers, trend = row[4], row[8]
        assert followers == "-" and trend == ""
        detail = str(screen.query_one("#detail", Static).render())
        assert "not fetched yet" in detail and "0 followers" not in detail


async def test_the_cron_preview_follows_the_clock_while_the_modal_is_open(
    test_settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CronEditModal, "PREVIEW_REFRESH_S", 0.05)
    await add_region(db, "EVERY_DAY", "0 3 * * *")
    clock = MovingClock()
    app = CreatordeckApp(test_settings, clock=clock, landing="regions")
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot, RegionsScreen)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CronEditModal), "the edit modal")
        modal = app.screen

        def first_run() -> str:
            preview = str(modal.query_one("#preview", Static).render())
            return preview.splitlines()[1].strip()

        start = clock.moment
        expected = start.replace(hour=3) + timedelta(days=1 if start.hour >= 3 else 0)
        assert first_run() == expected.strftime("%m-%d %H:%M")
        clock.moment = start + timedelta(days=2)
        later = expected + timedelta(days=2)
        await wait_until(
            pilot, lambda: first_run() == later.strftime("%m-%d %H:%M"), "the preview to move on"
        )


def test_one_sample_draws_no_trend() -> None:
    from console.data.creators import sparkline

    assert sparkline([]) == "" and sparkline([1200]) == "" and sparkline([1200, 1300]) == "▁█"
