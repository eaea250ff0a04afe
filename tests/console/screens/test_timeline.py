"""The Timeline screen (Pilot): heat strip and busiest minutes from the regions' crons, and the
offset edit that spreads a crowded minute (validated in its modal, written and audited)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, Static

from console.screens.offset_modal import OffsetModal
from console.screens.timeline import TimelineScreen
from storage.database import Database
from storage.settings import Settings
from tests.console.test_app import (
    SIZE,
    add_region,
    audit_rows,
    get_region,
    loaded,
    make_app,
    type_text,
    wait_for_db,
    wait_until,
)


async def crowded(db: Database) -> None:
    for code in ("ALPHA", "BRAVO", "CHARLIE", "DELTA"):
        await add_region(db, code, "15 * * * *")
    await add_region(db, "ECHO", "0 18 * * *")


async def test_the_timeline_shows_the_busiest_minute_and_its_regions(
    test_settings: Settings, db: Database
) -> None:
    await crowded(db)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await app.open_screen("timeline")
        screen: Any = await loaded(pilot, TimelineScreen)
        table = screen.query_one("#busiest", DataTable)
        first = [str(cell) for cell in table.get_row_at(0)]
        assert first[:3] == ["11-23 12:15", "4", "0"]
        assert first[3] == "ALPHA, BRAVO, CHARLIE, DELTA"
        heat = str(screen.query_one("#heat", Static).render())
        assert heat.splitlines()[0].startswith("12") and "█" in heat
        legend = str(screen.query_one("#heat-legend", Static).render())
        assert "peak minute 12:15 (4 regions)" in legend
        status = str(screen.query_one("#status-line", Static).render())
        assert "97 fire times of 5 regions in 24 h" in status  # 4 x 24 + 1


async def test_offset_spreads_a_crowded_minute_through_the_region_edit(
    test_settings: Settings, db: Database
) -> None:
    await crowded(db)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await app.open_screen("timeline")
        await loaded(pilot, TimelineScreen)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, OffsetModal), "the offset modal")
        modal = app.screen
        preview = str(modal.query_one("#preview", Static).render())
        assert "CHARLIE: 15 * * * * → 20 * * * *" in preview  # default: half of them, +5
        # A bad offset is refused before anything is written.
        modal.query_one("#offset", Input).value = "60"
        await pilot.pause()
        assert "cannot save" in str(modal.query_one("#preview", Static).render())
        await pilot.press("enter")
        assert isinstance(app.screen, OffsetModal)
        modal.query_one("#offset", Input).value = ""
        modal.query_one("#offset", Input).focus()
        await type_text(pilot, "7")
        await pilot.press("enter")

        async def moved() -> bool:
            region = await get_region(db, "DELTA")
            return region is not None and region.cron == "22 * * * *"

        await wait_for_db(pilot, moved, "DELTA's new cron")
        assert (await get_region(db, "CHARLIE")).cron == "22 * * * *"  # type: ignore[union-attr]
        assert (await get_region(db, "BRAVO")).cron == "15 * * * *"  # type: ignore[union-attr]
        audited = [(r.action, r.entity_id) for r in await audit_rows(db)]
        assert sorted(audited) == [("edit_schedule", "CHARLIE"), ("edit_schedule", "DELTA")]
        screen: Any = app.screen
        await wait_until(
            pilot,
            lambda: bool(screen.shown) and len(screen.shown[0].regions) == 2,
            "the spread minute",
        )
