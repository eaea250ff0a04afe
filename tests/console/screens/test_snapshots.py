"""Snapshots of each console screen at 80x24, with fixed data and a frozen clock.

Update after a deliberate change of the look:
    pytest tests/console/screens/test_snapshots.py --snapshot-update
and review the SVGs (pytest writes snapshot_report.html on a mismatch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey

from console.app import CreatordeckApp
from console.screens.live import LiveScreen
from console.widgets.deck_footer import DeckFooter
from console.widgets.status_header import StatusHeader
from storage.database import Database
from storage.models import JobRun, Region
from storage.settings import Settings
from tests.console.test_app import FROZEN, SIZE, frozen_clock, wait_until

DEADLINE_S = 15.0

REGIONS = [
    ("CHICAGO_METRO", "Chicago Metro", "30 6 * * *", "America/Chicago", True),
    ("DETROIT_METRO", "Detroit Metro", "0 3 * * *", "UTC", True),
    ("LOSANGELES_METRO", "Los Angeles Metro", "0 */12 * * *", "UTC", True),
    ("NASHVILLE", "Nashville", "*/15 * * * *", "UTC", False),
    ("TYPO_REGION", "Typo in cron", "0 25 * * *", "UTC", True),
]

RUNS = [  # region, minutes before the frozen clock, status, lag ms, duration ms, attempt, error
    ("LOSANGELES_METRO", 0, "running", 180, None, 1, None),
    ("DETROIT_METRO", 540, "ok", 420, 2_150, 1, None),
    ("CHICAGO_METRO", 330, "failed", 95_000, 31_000, 2, "platform timeout after 30s"),
    ("LOSANGELES_METRO", 720, "ok", 250, 1_750, 1, None),
    ("NASHVILLE", 735, "skipped", None, 0, 1, "previous tick still running"),
    ("NASHVILLE", 750, "missed", None, 0, 1, "no engine ran at this time"),
]


async def _seed(settings: Settings) -> None:
    db = Database(settings)
    try:
        async with db.session() as session:
            for code, name, cron, timezone, active in REGIONS:
                session.add(
                    Region(
                        code=code,
                        name=name,
                        cron=cron,
                        timezone=timezone,
                        active=active,
                        schedule_since=FROZEN - timedelta(days=2),
                    )
                )
            await session.flush()
            for code, minutes, status, lag, took, attempt, error in RUNS:
                scheduled = FROZEN - timedelta(minutes=minutes)
                started = None if lag is None else scheduled + timedelta(milliseconds=lag)
                session.add(
                    JobRun(
                        kind="tick",
                        region_code=code,
                        scheduled_for=scheduled,
                        started_at=started,
                        finished_at=None if status == "running" else scheduled,
                        status=status,
                        lag_ms=lag,
                        duration_ms=took,
                        attempt=attempt,
                        error=error,
                    )
                )
            await session.commit()
    finally:
        await db.dispose()


def seeded_app(settings: Settings) -> CreatordeckApp:
    asyncio.run(_seed(settings))
    return CreatordeckApp(settings, clock=frozen_clock, landing="regions")


async def _until(
    pilot: Pilot[Any],
    condition: Callable[[], bool],
    what: str,
    state: Callable[[], object] | None = None,
) -> None:
    """`wait_until` with the snapshot tests' shorter deadline (a timeout says what it saw)."""
    await wait_until(pilot, condition, what, timeout=DEADLINE_S, state=state)


async def settled(pilot: Pilot[Any]) -> None:
    """The screen on top has loaded its data and its header has read the queue and alerts."""
    app = pilot.app
    await _until(
        pilot,
        lambda: (
            isinstance(app.screen, LiveScreen)
            and app.screen.loads >= 1
            and app.screen.query_one(StatusHeader).engine is not None
            and app.screen.query_one(StatusHeader).alerts is not None
        ),
        "the screen and its header to load",
    )


def _footer_fits(app: App[Any]) -> bool:
    """The footer of the top screen that has one is laid out and its keys fit its width: it
    composes every key before its first layout, then drops what does not fit (DeckFooter)."""
    for screen in reversed(app.screen_stack):
        footers = screen.query(DeckFooter)
        if footers:
            footer = footers.first()
            widths = [key.size.width for key in footer.query(FooterKey)]
            return bool(footer.size.width and widths and all(widths)) and (
                sum(widths) <= footer.size.width
            )
    return True


async def laid_out(pilot: Pilot[Any]) -> None:
    """The footer has fitted itself (a condition, not a pause: a busy machine lays out late)."""
    await _until(pilot, lambda: _footer_fits(pilot.app), "the footer to fit its width")
    await pilot.pause(0.05)


def test_regions_screen(snap_compare: Any, test_settings: Settings) -> None:
    assert snap_compare(seeded_app(test_settings), terminal_size=SIZE, run_before=settled)


def test_regions_screen_detail_of_an_invalid_cron(
    snap_compare: Any, test_settings: Settings
) -> None:
    async def select_typo(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press("down", "down", "down", "down")

    assert snap_compare(seeded_app(test_settings), terminal_size=SIZE, run_before=select_typo)


def test_runs_screen(snap_compare: Any, test_settings: Settings) -> None:
    async def open_runs(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.app.open_screen("runs")  # type: ignore[attr-defined]
        await settled(pilot)

    assert snap_compare(seeded_app(test_settings), terminal_size=SIZE, run_before=open_runs)


def test_edit_cron_modal(snap_compare: Any, test_settings: Settings) -> None:
    async def edit(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press("down", "e")
        await _until(pilot, lambda: bool(pilot.app.screen.query("#cron")), "the edit modal")

    assert snap_compare(seeded_app(test_settings), terminal_size=SIZE, run_before=edit)


def test_help(snap_compare: Any, test_settings: Settings) -> None:
    async def help_(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press("question_mark")
        await _until(pilot, lambda: bool(pilot.app.screen.query("#help-dialog")), "help")

    assert snap_compare(seeded_app(test_settings), terminal_size=SIZE, run_before=help_)
