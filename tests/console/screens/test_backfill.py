"""Backfill from the console (Pilot): the Regions modal refuses a bad range before it writes,
queues a good one (ledger rows as backfill, with who asked), the Runs screen shows them as
such, and `x` there cancels what has not started."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, Static

from console.screens.backfill_modal import BackfillModal
from console.screens.runs import RunsScreen
from storage.database import Database
from storage.settings import Settings
from tests.console.test_app import (
    SIZE,
    add_region,
    loaded,
    make_app,
    notifications,
    wait_for_db,
    wait_until,
)
from tests.support.engine import ledger


async def test_backfill_is_checked_queued_shown_and_cancelled(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "HOURLY", "0 * * * *")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BackfillModal), "the modal")
        modal = app.screen
        preview = modal.query_one("#preview", Static)
        assert "25 fire times: 11-22 12:00 … 11-23 12:00" in str(preview.render())
        modal.query_one("#to", Input).value = "2026-11-23 13:00"
        await pilot.pause()
        assert "ends in the future" in str(preview.render())
        await pilot.press("enter")
        assert isinstance(app.screen, BackfillModal) and await ledger(db, "HOURLY") == []
        modal.query_one("#from", Input).value = "2026-11-01 00:00"
        modal.query_one("#to", Input).value = "2026-11-23 12:00"
        await pilot.pause()
        assert "more than 1,000" not in str(preview.render())
        modal.query_one("#from", Input).value = "2026-09-01 00:00"
        await pilot.pause()
        assert "more than 1,000 fire times" in str(preview.render())
        modal.query_one("#from", Input).value = "2026-11-23 09:00"
        await pilot.pause()
        await pilot.press("enter")

        async def queued() -> bool:
            return len(await ledger(db, "HOURLY")) == 4

        await wait_for_db(pilot, queued, "four queued backfill rows")
        rows = await ledger(db, "HOURLY")
        assert {(r["status"], r["trigger"]) for r in rows} == {("queued", "backfill")}
        assert all(r["requested_by"] for r in rows)
        await wait_until(
            pilot, lambda: any("4 queued" in n for n in notifications(app)), "the notice"
        )

        await app.open_screen("runs")
        runs: Any = await loaded(pilot, RunsScreen)
        await wait_until(pilot, lambda: len(runs.shown) == 4, "the backfill rows")
        table = runs.query_one("#runs", DataTable)
        assert str(table.get_row_at(0)[0]) == "HOURLY (b)"
        assert str(table.get_row_at(0)[4]) == "queued"
        assert " backfill by " in str(runs.query_one("#detail", Static).render())
        await pilot.press("x")

        async def cancelled() -> bool:
            return {r["status"] for r in await ledger(db, "HOURLY")} == {"cancelled"}

        await wait_for_db(pilot, cancelled, "the rows cancelled")
        await wait_until(
            pilot, lambda: str(table.get_row_at(0)[4]) == "cancelled", "the cancelled rows"
        )
