"""The Dead letters screen's table fits the terminal it is on now, not the one it opened on."""

from __future__ import annotations

from console.screens.dead_letters import DeadLettersScreen
from console.widgets.virtual_table import VirtualTable
from storage.database import Database
from storage.queries import dead_letters
from storage.settings import Settings
from tests.console.screens.test_creators import open_screen
from tests.console.test_app import make_app, wait_until
from tests.support.creators import add_creators, add_region

ERROR = "not_found: " + " ".join(f"word{n}" for n in range(20))  # ~130 characters, one line


def _row_text(table: VirtualTable[object]) -> str:
    return table.render_line(1).text  # line 0 is the header


async def test_a_resize_refits_the_error_column_to_the_width_left(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db)
    (cid,) = await add_creators(db, 1)
    letter = dead_letters.Letter(
        kind="fetch",
        dedupe_key=dead_letters.fetch_key(cid),
        error=ERROR,
        payload={"creator_id": cid, "platform": "mock", "external_id": "acct0"},
        creator_id=cid,
    )
    async with db.transaction() as session:
        await dead_letters.record(session, [letter])
    app = make_app(test_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, "deadletters", DeadLettersScreen)
        await wait_until(pilot, lambda: len(screen.letters) == 1, "the letter")
        table = screen.table

        def fits() -> bool:  # every column on screen: nothing scrolls sideways
            return table.virtual_size.width <= table.scrollable_content_region.width

        await wait_until(pilot, fits, "the columns to fit 80 columns")
        narrow = _row_text(table)
        assert "not_found" in narrow and "word3" not in narrow  # cut to the width left

        await pilot.resize_terminal(120, 40)
        await wait_until(pilot, lambda: "word6" in _row_text(table), "a wider error")
        assert fits()
        wide = _row_text(table).rstrip()
        assert wide.endswith("…")  # still cut (the detail line shows it whole), not run off
        assert len(wide) > len(narrow.rstrip()) + 30  # the 40 new columns went to the error

        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: "word3" not in _row_text(table), "narrow again")
        assert fits()
