"""Every screen and the main modals at 80x24 (SSH, as a new user) and 120x40, with fixed data
and a frozen clock: snapshots, plus what must show at any size: `q quit` in the footer and the
clock (and READ-ONLY) in the header.

Update after a deliberate change of the look:
    pytest tests/console/test_layouts.py --snapshot-update
and review the SVGs (pytest writes snapshot_report.html on a mismatch).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from console.app import CreatordeckApp
from console.widgets.deck_footer import DeckFooter
from console.widgets.status_header import StatusHeader
from storage.settings import Settings
from tests.console.screens.test_overview import seeded_landing
from tests.console.screens.test_snapshots import _seed, _until, settled
from tests.console.test_app import frozen_clock

SIZES = [(80, 24), (120, 40)]
SCREENS = [
    "regions",
    "runs",
    "timeline",
    "creators",
    "deadletters",
    "queues",
    "posts",
    "connections",
    "experiments",
    "alerts",
]


def app_for(settings: Settings, read_only: bool = False) -> CreatordeckApp:
    asyncio.run(_seed(settings))
    return CreatordeckApp(settings, clock=frozen_clock, landing="regions", read_only=read_only)


def assert_essentials(pilot: Pilot[Any]) -> None:
    """`q quit` is in the footer and the clock at the header's right end, whatever the width."""
    screen = pilot.app.screen
    keys = [key.action for key in screen.query_one(DeckFooter).query(FooterKey)]
    assert "quit" in keys, keys
    header = screen.query_one(StatusHeader).render().plain
    assert header.rstrip().endswith("UTC"), header
    if pilot.app.read_only:  # type: ignore[attr-defined]
        assert "READ-ONLY" in header, header


def on_screen(name: str) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.app.open_screen(name)  # type: ignore[attr-defined]
        await settled(pilot)
        await pilot.pause(0.1)  # the footer fits itself after the first layout
        assert_essentials(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", SCREENS)
def test_screen(snap_compare: Any, test_settings: Settings, name: str, size: Any) -> None:
    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=on_screen(name))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_read_only_header_keeps_the_clock(
    snap_compare: Any, test_settings: Settings, size: Any
) -> None:
    app = app_for(test_settings, read_only=True)
    assert snap_compare(app, terminal_size=size, run_before=on_screen("queues"))


def test_overview_120x40(
    snap_compare: Any, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = seeded_landing(test_settings, monkeypatch)
    assert snap_compare(app, terminal_size=(120, 40), run_before=settled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_posts_week(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def week(pilot: Pilot[Any]) -> None:
        await on_screen("posts")(pilot)
        await pilot.press("w")
        await pilot.pause(0.2)
        await settled(pilot)

    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=week)


def _no_blink(pilot: Pilot[Any]) -> None:
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


MODALS = {  # what opens it from Regions, and a widget id it shows
    "command": ((":",), "#command"),
    "help": (("question_mark",), "#help-dialog"),
    "edit_cron": (("down", "e"), "#cron"),
    "new_region": (("n",), "#code"),
    "confirm_delete": (("down", "d"), "#question"),
    "backfill": (("down", "b"), "#backfill-dialog"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("modal", list(MODALS))
def test_modal(snap_compare: Any, test_settings: Settings, modal: str, size: Any) -> None:
    keys, shows = MODALS[modal]

    async def open_modal(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press(*keys)
        await _until(pilot, lambda: bool(pilot.app.screen.query(shows)), modal)
        _no_blink(pilot)
        await pilot.pause(0.1)

    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=open_modal)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_timeline_offset_modal(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    async def open_modal(pilot: Pilot[Any]) -> None:
        await on_screen("timeline")(pilot)
        await pilot.press("o")
        await _until(pilot, lambda: bool(pilot.app.screen.query("#offset-dialog")), "offset")
        _no_blink(pilot)
        await pilot.pause(0.1)

    assert snap_compare(app_for(test_settings), terminal_size=size, run_before=open_modal)
