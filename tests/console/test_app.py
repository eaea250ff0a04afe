"""The console driven with Textual's Pilot against the real Postgres and Redis of the test run.

Each test waits for conditions with a deadline (a load finished, a row written), never sleeps.
"""

from __future__ import annotations

import gc
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import insert, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from console.app import CreatordeckApp
from console.screens.command import CommandBar
from console.screens.dialogs import ConfirmModal, CronEditModal, RegionFormModal
from console.screens.help import HelpModal
from console.screens.regions import RegionsScreen
from console.screens.runs import RunsScreen
from console.ssh.session import Session
from engine.tick_queue import pending_ticks
from storage.database import Database
from storage.models import AuditEntry, JobRun, Region
from storage.settings import Settings

# The console's clock in every console test. Their data is written relative to it and the console
# reads no other clock, so the real date never matters; it is a fixed moment, not "today", so the
# snapshots stay byte-stable. (Queued jobs are judged ready/deferred against it too.)
FROZEN = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SIZE = (80, 24)
# A deadline, not a speed test: generous so a loaded machine (CI beside other jobs) still passes.
DEADLINE_S = 45.0


def frozen_clock() -> datetime:
    return FROZEN


def make_app(
    settings: Settings, read_only: bool = False, session: Session | None = None
) -> CreatordeckApp:
    return CreatordeckApp(
        settings,
        read_only=read_only,
        clock=frozen_clock,
        landing="regions",
        session=session or Session(),
    )


async def wait_until(
    pilot: Pilot[Any],
    condition: Callable[[], bool],
    what: str,
    timeout: float = DEADLINE_S,
    state: Callable[[], object] | None = None,
) -> None:
    """Pause until `condition()` holds. A timeout names what was awaited, the screen and focus,
    and `state()` if given: a flake under load must say what it saw."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            app = pilot.app
            seen = f"; {state()}" if state is not None else ""
            raise AssertionError(
                f"timed out waiting for {what} (screen {app.screen!r}, focus {app.focused!r}{seen})"
            )
        await pilot.pause(0.02)


async def wait_for_db(pilot: Pilot[Any], probe: Callable[[], Any], what: str) -> None:
    """Wait until an async probe (a query) returns something truthy."""
    deadline = time.monotonic() + DEADLINE_S
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def loaded(pilot: Pilot[Any], screen_type: type[Any] = RegionsScreen, loads: int = 1) -> Any:
    await wait_until(
        pilot,
        lambda: isinstance(pilot.app.screen, screen_type) and pilot.app.screen.loads >= loads,
        f"{screen_type.__name__} to load",
    )
    return pilot.app.screen


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*("space" if ch == " " else ch for ch in text))


def notifications(app: CreatordeckApp) -> list[str]:
    return [n.message for n in app._notifications]


async def add_region(db: Database, code: str, cron: str = "0 3 * * *", **extra: Any) -> None:
    async with db.session() as session:
        session.add(
            Region(
                code=code,
                name=extra.pop("name", code.title().replace("_", " ")),
                cron=cron,
                timezone=extra.pop("timezone", "UTC"),
                active=extra.pop("active", True),
                schedule_since=FROZEN - timedelta(days=1),
                **extra,
            )
        )
        await session.commit()


async def get_region(db: Database, code: str) -> Region | None:
    async with db.session() as session:
        return await session.get(Region, code)


async def audit_rows(db: Database) -> list[AuditEntry]:
    async with db.session() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def cell_text(table: DataTable[Any], row: int, column: int) -> str:
    return str(table.get_row_at(row)[column])


async def test_regions_screen_lists_regions_with_next_runs_and_invalid_cron(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    await add_region(db, "BROKEN_CRON", "61 * * * *")  # written behind the console's back
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        assert table.row_count == 2
        broken = next(r for r in screen.rows if r.code == "BROKEN_CRON")
        assert broken.invalid is not None and "minute" in broken.invalid
        assert "invalid" in cell_text(table, 0, 5)
        detroit = next(r for r in screen.rows if r.code == "DETROIT_METRO")
        # 03:00 UTC on the three days after the console's clock (12:00).
        first = FROZEN.replace(hour=3) + timedelta(days=1)
        assert list(detroit.next_runs) == [first + timedelta(days=d) for d in range(3)]


async def test_edit_cron_with_a_valid_value_writes_the_row_and_an_audit_row(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CronEditModal), "the edit modal")
        modal = app.screen
        await pilot.press("ctrl+u")
        await type_text(pilot, "*/15 * * * *")
        preview = str(modal.query_one("#preview", Static).render())
        assert "next 10 runs" in preview
        assert "11-23 12:15" in preview and "11-23 14:30" in preview  # 10th run from the clock
        await pilot.press("enter")

        async def saved() -> bool:
            region = await get_region(db, "DETROIT_METRO")
            return region is not None and region.cron == "*/15 * * * *"

        await wait_for_db(pilot, saved, "the new cron in the database")
        rows = await audit_rows(db)
        assert [(r.action, r.entity_id) for r in rows] == [("edit_schedule", "DETROIT_METRO")]
        assert rows[0].before is not None and rows[0].before["cron"] == "0 3 * * *"
        assert rows[0].after is not None and rows[0].after["cron"] == "*/15 * * * *"
        assert rows[0].actor
        screen = app.screen
        await wait_until(
            pilot, lambda: screen.rows and screen.rows[0].cron == "*/15 * * * *", "the row"
        )


async def test_edit_cron_with_an_invalid_value_is_refused_and_writes_nothing(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO", "0 3 * * *")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CronEditModal), "the edit modal")
        modal = app.screen
        await pilot.press("ctrl+u")
        await type_text(pilot, "61 * * * *")
        preview = str(modal.query_one("#preview", Static).render())
        assert "cannot save" in preview and "invalid minute field '61'" in preview
        await pilot.press("enter")  # refused: the modal stays open and says why
        await pilot.pause()
        assert app.screen is modal
        assert any("not saved" in m and "minute" in m for m in notifications(app))
        await pilot.press("ctrl+u")
        await type_text(pilot, "0 3 * *")  # four fields
        assert "5 fields" in str(modal.query_one("#preview", Static).render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, RegionsScreen), "the modal to close")
    region = await get_region(db, "DETROIT_METRO")
    assert region is not None and region.cron == "0 3 * * *"
    assert await audit_rows(db) == []


async def test_space_pauses_and_resumes(test_settings: Settings, db: Database) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("space")

        async def active_is(value: bool) -> bool:
            region = await get_region(db, "DETROIT_METRO")
            return region is not None and region.active is value

        await wait_for_db(pilot, lambda: active_is(False), "the pause")
        screen = app.screen
        await wait_until(pilot, lambda: not screen.rows[0].active, "the row to show paused")
        await pilot.press("space")
        await wait_for_db(pilot, lambda: active_is(True), "the resume")
    assert [r.action for r in await audit_rows(db)] == ["pause", "resume"]


async def test_run_now_puts_a_manual_tick_in_the_queue(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        pool = await app.queue_pool()
        assert await pending_ticks(pool, test_settings) == []
        await pilot.press("r")

        async def queued() -> bool:
            return bool(await pending_ticks(pool, test_settings))

        await wait_for_db(pilot, queued, "the tick in the queue")
        (tick,) = await pending_ticks(pool, test_settings)
        assert tick.region_code == "DETROIT_METRO"
        assert tick.manual and tick.fire == FROZEN
        await wait_for_db(pilot, lambda: audit_rows(db), "the run-now audit row")
    assert [r.action for r in await audit_rows(db)] == ["run_now"]


async def test_delete_asks_first(test_settings: Settings, db: Database) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, RegionsScreen), "the screen")
        assert await get_region(db, "DETROIT_METRO") is not None
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm")
        await pilot.press("y")

        async def gone() -> bool:
            return await get_region(db, "DETROIT_METRO") is None

        await wait_for_db(pilot, gone, "the delete")
        screen = app.screen
        await wait_until(pilot, lambda: screen.table.row_count == 0, "the row to go")
    rows = await audit_rows(db)
    assert [(r.action, r.after) for r in rows] == [("delete", None)]


async def test_new_region_is_validated_then_created(test_settings: Settings, db: Database) -> None:
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, RegionFormModal), "the form")
        modal = app.screen
        await type_text(pilot, "bad code")
        assert "code" in str(modal.query_one("#form-error", Static).render())
        await pilot.press("ctrl+u")
        await type_text(pilot, "AUSTIN_METRO")
        await pilot.press("tab")
        await type_text(pilot, "Austin Metro")
        await pilot.press("tab")
        await type_text(pilot, "0 */6 * * *")
        await pilot.press("tab")
        await pilot.press("ctrl+u")
        await type_text(pilot, "America/Chicago")
        assert "ok" in str(modal.query_one("#form-error", Static).render())
        await pilot.press("enter")

        async def created() -> bool:
            return await get_region(db, "AUSTIN_METRO") is not None

        await wait_for_db(pilot, created, "the new region")
    region = await get_region(db, "AUSTIN_METRO")
    assert region is not None and region.timezone == "America/Chicago"
    assert [r.action for r in await audit_rows(db)] == ["create"]


async def test_read_only_refuses_every_edit_and_writes_nothing(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        for key in ("e", "space", "n", "d", "r"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, RegionsScreen), f"{key} opened {app.screen}"
        refused = [m for m in notifications(app) if "read-only" in m]
        assert len(refused) == 5
        assert all("started with --read-only" in m for m in refused), refused
        pool = await app.queue_pool()
        assert await pending_ticks(pool, test_settings) == []
    region = await get_region(db, "DETROIT_METRO")
    assert region is not None and region.active and region.cron == "0 3 * * *"
    assert await audit_rows(db) == []


async def test_filter_narrows_the_table(test_settings: Settings, db: Database) -> None:
    for code in ("DETROIT_METRO", "LOSANGELES_METRO", "CHICAGO_METRO"):
        await add_region(db, code)
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        assert screen.table.row_count == 3
        await pilot.press("slash")
        await type_text(pilot, "troit")
        await wait_until(pilot, lambda: screen.table.row_count == 1, "the filter")
        assert cell_text(screen.table, 0, 0) == "DETROIT_METRO"
        await pilot.press("enter")  # keep the filter, back to the table
        await pilot.press("space")  # acts on the one region shown
        await pilot.pause()
        await pilot.press("slash", "escape")  # clear it
        await wait_until(pilot, lambda: screen.table.row_count == 3, "the filter to clear")


def shown_text(widget: Static, width: int = 70) -> str:
    """What a Static shows, as plain text (its content may be a Rich table)."""
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def test_help_lists_the_screen_keys_and_the_global_ones(
    test_settings: Settings, db: Database
) -> None:
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), "help")
        screen_keys = shown_text(app.screen.query_one("#help-screen-keys", Static))
        global_keys = shown_text(app.screen.query_one("#help-global-keys", Static))
        for text in ("edit cron", "pause/resume", "new", "delete", "run now", "filter"):
            assert text in screen_keys
        for text in ("command", "help", "quit", "palette", "back"):
            assert text in global_keys
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, RegionsScreen), "help to close")


async def test_command_mode_jumps_between_screens(test_settings: Settings, db: Database) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("colon")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandBar), "the command bar")
        await type_text(pilot, "ru")
        await pilot.press("tab")  # completes to `runs`
        assert app.screen.query_one(Input).value == "runs"
        await pilot.press("enter")
        await loaded(pilot, RunsScreen)
        assert app.current_mode == "runs"
        await pilot.press("colon")
        await type_text(pilot, "nosuch")
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "runs"
        assert any("no screen 'nosuch'" in m for m in notifications(app))
        await pilot.press("colon")
        await type_text(pilot, "regions")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.current_mode == "regions", "the regions screen")
        await pilot.press("escape")  # back to where we came from
        await wait_until(pilot, lambda: app.current_mode == "runs", "back to runs")


async def add_run(
    db: Database, code: str, minutes_ago: int, status: str, error: str | None = None
) -> None:
    scheduled = FROZEN - timedelta(minutes=minutes_ago)
    async with db.session() as session:
        session.add(
            JobRun(
                kind="tick",
                region_code=code,
                scheduled_for=scheduled,
                started_at=scheduled + timedelta(milliseconds=250),
                finished_at=scheduled + timedelta(seconds=2),
                status=status,
                lag_ms=250,
                duration_ms=1750,
                error=error,
                attempt=1,
            )
        )
        await session.commit()


async def test_runs_screen_filters_by_status_and_region(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO")
    await add_region(db, "CHICAGO_METRO")
    await add_run(db, "DETROIT_METRO", 1, "ok")
    await add_run(db, "DETROIT_METRO", 2, "failed", "platform said 500")
    await add_run(db, "CHICAGO_METRO", 3, "ok")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("enter")  # the selected region's runs (CHICAGO_METRO sorts first)
        screen = await loaded(pilot, RunsScreen)
        await wait_until(pilot, lambda: screen.table.row_count == 1, "CHICAGO_METRO's runs")
        await pilot.press("f")  # region filter off
        await wait_until(pilot, lambda: screen.table.row_count == 3, "all runs")
        await pilot.press("s", "s")  # all -> running -> ok
        await wait_until(
            pilot,
            lambda: (
                screen.status_filter == "ok"
                and screen.table.row_count == 2
                and all(r.status == "ok" for r in screen.shown)
            ),
            "ok runs only",
        )
        await pilot.press("c")
        await wait_until(pilot, lambda: screen.table.row_count == 3, "filters cleared")
        await pilot.press("slash")
        await type_text(pilot, "500")
        await wait_until(pilot, lambda: screen.table.row_count == 1, "the text filter")
        assert screen.shown[0].status == "failed"


async def test_a_database_outage_is_shown_and_the_console_keeps_running(
    test_settings: Settings,
) -> None:
    broken = test_settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/nowhere"}
    )
    app = make_app(broken)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        status = app.screen.query_one("#status-line", Static)
        await wait_until(pilot, lambda: "refresh failed" in str(status.render()), "the error")
        assert "retrying in" in str(status.render())
        await pilot.press("question_mark")  # still answers keys
        await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), "help")


@pytest.mark.parametrize("screen_name", ["regions", "runs"])
async def test_palette_offers_every_screen(test_settings: Settings, screen_name: str) -> None:
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert f"Go to {screen_name}" in titles


SSH_SESSION = Session(ssh_key="bob@ops", read_only_reason="this SSH key is marked read-only")


async def test_an_ssh_console_names_why_it_is_read_only(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings, read_only=True, session=SSH_SESSION)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("space")
        await pilot.pause()
        assert notifications(app) == [
            "read-only console: cannot pause or resume (this SSH key is marked read-only)"
        ]
    assert await audit_rows(db) == []


@pytest.mark.parametrize(
    ("read_only", "session"),
    [(True, Session()), (False, SSH_SESSION), (True, SSH_SESSION)],
    ids=["read-only", "ssh", "ssh-read-only"],
)
async def test_the_palette_offers_nothing_that_writes_when_read_only_or_over_ssh(
    test_settings: Settings, tmp_path: Path, read_only: bool, session: Session
) -> None:
    app = make_app(test_settings, read_only=read_only, session=session)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        # Look, move, leave: nothing that writes files or changes the server.
        assert titles - {f"Go to {name}" for name in app.screen_names} <= {
            "Theme",
            "Keys",
            "Maximize",
            "Minimize",
            "Quit",
        }
        assert "Go to regions" in titles and "Theme" in titles
        app.action_screenshot(path=str(tmp_path))  # reachable from markup links: refused too
        await pilot.pause()
        assert list(tmp_path.iterdir()) == []


async def test_a_local_read_write_palette_keeps_textual_s_commands(
    test_settings: Settings,
) -> None:
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Screenshot", "Theme", "Go to regions"} <= titles


async def test_nothing_refreshes_behind_a_modal(test_settings: Settings, db: Database) -> None:
    await add_region(db, "DETROIT_METRO")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpModal), "help")
        # A load started just before the modal opened may still finish; none starts after.
        await wait_until(pilot, lambda: not screen._loading, "any load in flight")
        await add_region(db, "CHICAGO_METRO")
        loads = screen.loads
        for _ in range(100):  # far past any refresh interval, as the timer would tick
            screen._tick()
            assert not screen._loading
        assert screen.loads == loads and screen.table.row_count == 1
        await pilot.press("escape")  # back on top: it loads at once
        await wait_until(pilot, lambda: screen.table.row_count == 2, "the fresh rows")


async def test_command_mode_passes_a_region_to_the_runs_screen(
    test_settings: Settings, db: Database
) -> None:
    await add_region(db, "DETROIT_METRO")
    await add_region(db, "CHICAGO_METRO")
    await add_run(db, "DETROIT_METRO", 1, "ok")
    await add_run(db, "CHICAGO_METRO", 2, "ok")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("colon")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandBar), "the command bar")
        await type_text(pilot, "runs DETROIT_METRO")
        await pilot.press("enter")
        screen = await loaded(pilot, RunsScreen)
        await wait_until(
            pilot,
            lambda: [r.region_code for r in screen.shown] == ["DETROIT_METRO"],
            "DETROIT_METRO's runs only",
        )


async def test_every_region_is_reachable_and_its_last_run_is_read_when_it_comes_on_screen(
    test_settings: Settings, db: Database
) -> None:
    # More regions than the old table's cap of 1,000 (and far more than the window of last runs
    # a load reads).
    count = 1100
    async with db.session() as session:
        await session.execute(
            insert(Region),
            [
                {
                    "code": f"REGION_{n:04d}",
                    "name": f"Region {n}",
                    "cron": "0 3 * * *",
                    "timezone": "UTC",
                    "active": True,
                    "schedule_since": FROZEN - timedelta(days=1),
                }
                for n in range(count)
            ],
        )
        await session.commit()
    last = f"REGION_{count - 1:04d}"
    await add_run(db, "REGION_0000", 10, "ok")
    await add_run(db, last, 10, "failed", "boom")
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        assert table.row_count == count and len(screen.rows) == count
        assert cell_text(table, 0, 2) == "ok"
        assert last not in screen.window  # off screen: its last run was not read yet
        await pilot.press("end")
        selected = screen.selected()
        assert selected is not None and selected.code == last
        # On screen now: the next load reads its last run (the tick notices within 0.25 s).
        await wait_until(pilot, lambda: cell_text(table, count - 1, 2) == "failed", "its run")
        assert "failed" in str(screen.query_one("#detail", Static).render())
        await pilot.press("home")
        assert table.cursor_row == 0 and round(table.scroll_y) == 0
        await pilot.press("pagedown")
        assert table.cursor_row > 10
        await pilot.press("slash")
        await type_text(pilot, "REGION_108")
        await wait_until(pilot, lambda: table.row_count == 10, "the filter")
        assert cell_text(table, 0, 0) == "REGION_1080"


async def test_the_console_freezes_its_start_up_heap_and_releases_it_at_exit(
    test_settings: Settings, db: Database
) -> None:
    # Full garbage collections over the start-up heap stalled the UI loop ~100 ms at random
    # (the Queues screen's "unexplained" stall): console/heap.py freezes it once started.
    assert gc.get_freeze_count() == 0
    app = make_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await wait_until(pilot, lambda: gc.get_freeze_count() > 0, "the heap frozen")
    assert gc.get_freeze_count() == 0
