"""Two operators, one region, in the console: a save made against what the screen showed is
refused when someone else changed the region meanwhile, and the screen shows their change."""

from __future__ import annotations

from console.screens.dialogs import CronEditModal
from console.screens.regions import RegionsScreen
from storage.database import Database
from storage.queries.regions import update_region
from storage.settings import Settings
from tests.console.test_app import (
    FROZEN,
    SIZE,
    add_region,
    get_region,
    loaded,
    make_app,
    notifications,
    type_text,
    wait_until,
)


async def test_a_stale_save_is_refused_and_the_other_change_is_shown(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, RegionsScreen)
        assert screen.rows[0].version == 1
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CronEditModal), "the edit modal")
        # Meanwhile, another operator saves a new schedule for the same region.
        async with db.transaction() as session:
            await update_region(
                session, "DETROIT_METRO", actor="ALICE", version=1, cron="0 4 * * *", now=FROZEN
            )
        await pilot.press("ctrl+u")
        await type_text(pilot, "*/15 * * * *")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: any("changed by ALICE" in n for n in notifications(app)), "refusal"
        )
        refusal = next(n for n in notifications(app) if "changed by ALICE" in n)
        assert refusal.startswith("not saved: DETROIT_METRO changed by ALICE at ")
        assert "now `0 4 * * *`" in refusal
        region = await get_region(db, "DETROIT_METRO")
        assert region is not None and region.cron == "0 4 * * *"  # not overwritten
        await wait_until(
            pilot,
            lambda: screen.rows[0].cron == "0 4 * * *" and screen.rows[0].version == 2,
            "the other operator's change on screen",
        )
        # Now made against what is on screen, the same edit goes through.
        await pilot.press("space")
        await wait_until(pilot, lambda: not screen.rows[0].active, "paused")
        assert screen.rows[0].version == 3
