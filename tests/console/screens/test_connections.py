"""The Connections screen at 80 and 120 columns: every column it shows fits whole (the account
id and the expiry date give way at 80 and move to the line under the table), and counts read
as words ("1 account")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import Static

from console.screens.connections import ConnectionsScreen, columns_for
from console.widgets.formatting import when
from storage.database import Database
from storage.settings import Settings
from tests.console.screens.test_posts import open_screen
from tests.console.test_app import FROZEN, make_app
from tests.support.publishing import add_connection


@pytest.mark.parametrize("width", [80, 120])
def test_the_columns_fit_the_width(width: int) -> None:
    cells = sum(w + 2 for _, _, w in columns_for(width)) + 2  # padding, scrollbar
    assert cells <= width
    assert ("account" in [key for _, key, _ in columns_for(width)]) == (width >= 120)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_one_account_at_each_size(
    test_settings: Settings, db: Database, size: tuple[int, int]
) -> None:
    expires = FROZEN + timedelta(days=3, hours=2)
    conn = await add_connection(db, "alice", expires_at=expires)
    app = make_app(test_settings)
    async with app.run_test(size=size) as pilot:
        screen = await open_screen(pilot, "connections", ConnectionsScreen)
        status = str(screen.query_one("#status-line", Static).render())
        assert status.startswith("1 account, 1 expires within 7 days ·"), status
        row = [str(cell) for cell in screen.table.get_row_at(0)]
        if size[0] == 80:
            assert row[4] == "in 3d2h" and conn.account_id not in row
        else:
            assert row[4] == f"{when(expires)} (in 3d2h)" and row[6] == conn.account_id
        detail = str(screen.query_one("#detail", Static).render())
        assert conn.account_id in detail and f"expires {when(expires)}" in detail


def test_the_name_takes_the_width_the_other_columns_leave() -> None:
    for width in (80, 120):
        widths = {key: w for _, key, w in columns_for(width)}
        others = sum(w + 2 for key, w in widths.items() if key != "name")
        assert widths["name"] + 2 + others + 2 == width  # the name fills the row, scrollbar kept
    assert dict((k, w) for _, k, w in columns_for(60))["name"] == 10  # narrowed, not hidden
    assert dict((k, w) for _, k, w in columns_for(200))["name"] == 40  # and no wider than 40


async def test_a_long_name_shows_whole_at_80_columns(test_settings: Settings, db: Database) -> None:
    await add_connection(db, "creatordeck_demo_team")  # "@creatordeck_demo_team": 22 cells
    app = make_app(test_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, "connections", ConnectionsScreen)
        line = screen.table.render_line(1).text  # line 0 is the header
        assert "@creatordeck_demo_team " in line and "…" not in line, line
