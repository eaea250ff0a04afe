"""The Audit screen: who changed what and when, before and after, filtered by actor or entity;
a window of rows so it never caps; snapshots at 80x24 and 120x40 on a frozen clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from textual.pilot import Pilot
from textual.widgets import Static

from console.app import CreatordeckApp
from console.data.audit import AuditFilterError, AuditRow, change_lines, parse_filter
from console.screens.audit import SCROLLBAR, AuditScreen, audit_cells, columns_for
from console.widgets.filter_bar import FilterBar
from console.widgets.virtual_table import CELL_PADDING
from storage.database import Database
from storage.models import AuditEntry
from storage.queries.audit_log import AuditFilter
from storage.settings import Settings
from tests.console.screens.test_snapshots import settled
from tests.console.test_app import FROZEN, SIZE, frozen_clock, type_text, wait_until

ENTRIES: list[dict[str, Any]] = [
    {  # the longest actions and entity: they must show whole at 80 columns
        "actor": "dana",
        "action": "tracking_credential.delete",
        "entity": "tracking_credential",
        "entity_id": "youtube_api_key",
        "before": {"set": True},
        "after": None,
    },
    {
        "actor": "dana",
        "action": "status:running",
        "entity": "experiment",
        "entity_id": "checkout_flow",
        "before": {"status": "draft"},
        "after": {"status": "running"},
    },
    {
        "actor": "alice",
        "action": "create",
        "entity": "region",
        "entity_id": "DETROIT_METRO",
        "before": None,
        "after": {"code": "DETROIT_METRO", "cron": "0 3 * * *", "active": True},
    },
    {
        "actor": "bob",
        "action": "edit_schedule",
        "entity": "region",
        "entity_id": "DETROIT_METRO",
        "before": {"code": "DETROIT_METRO", "cron": "0 3 * * *", "active": True},
        "after": {"code": "DETROIT_METRO", "cron": "0 4 * * *", "active": True},
    },
    {
        "actor": "alice",
        "action": "schedule",
        "entity": "post",
        "entity_id": "42",
        "before": {"status": "draft", "scheduled_at": None},
        "after": {"status": "scheduled", "scheduled_at": "2026-11-24T09:00:00+00:00"},
    },
    {
        "actor": "carol",
        "action": "set_weights",
        "entity": "experiment",
        "entity_id": "onboarding",
        "before": {"weights": {"a": 50, "b": 50}},
        "after": {"weights": {"a": 80, "b": 20}},
    },
    {
        "actor": "bob",
        "action": "delete",
        "entity": "region",
        "entity_id": "OLD_REGION",
        "before": {"code": "OLD_REGION", "cron": "*/5 * * * *"},
        "after": None,
    },
]


async def seed(db: Database, entries: list[dict[str, Any]] = ENTRIES) -> None:
    """Entries a minute apart, the newest a minute before the console's clock."""
    rows = [
        {**entry, "at": FROZEN - timedelta(minutes=len(entries) - n)}
        for n, entry in enumerate(entries)
    ]
    async with db.transaction() as session:
        await session.execute(insert(AuditEntry), rows)


def audit_app(settings: Settings) -> CreatordeckApp:
    return CreatordeckApp(settings, clock=frozen_clock, landing="audit")


async def audit_screen(pilot: Pilot[Any], loads: int = 1) -> AuditScreen:
    app = pilot.app
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, AuditScreen) and app.screen.loads >= loads,
        "the Audit screen to load",
    )
    assert isinstance(app.screen, AuditScreen)
    return app.screen


def shown(screen: AuditScreen) -> list[tuple[str, str, str]]:
    return [(r.actor, r.entity, r.entity_id) for r in screen.table.rows if r is not None]


def test_filters_parse_and_refuse_what_they_cannot_mean() -> None:
    assert parse_filter("") == AuditFilter()
    assert parse_filter("actor:alice region:DETROIT_METRO") == AuditFilter(
        actor="alice", entity="region", entity_id="DETROIT_METRO"
    )
    assert parse_filter("@bob post:42") == AuditFilter(actor="bob", entity="post", entity_id="42")
    assert parse_filter("experiment:") == AuditFilter(entity="experiment")
    assert parse_filter("onboarding") == AuditFilter(word="onboarding")
    with pytest.raises(AuditFilterError, match="filter by actor:NAME"):
        parse_filter("colour:red")
    with pytest.raises(AuditFilterError, match="two values for actor"):
        parse_filter("actor:a actor:b")


def test_change_lines_say_what_changed_and_nothing_else() -> None:
    assert change_lines(
        {"cron": "0 3 * * *", "active": True}, {"cron": "0 4 * * *", "active": True}
    ) == ('cron: "0 3 * * *" → "0 4 * * *"',)
    assert change_lines(None, {"enqueued": True}) == ("+ enqueued: true",)
    assert change_lines({"code": "X"}, None) == ('- code: "X"',)
    long = change_lines({"a": "x" * 200}, {"a": "y"})[0]
    assert len(long) < 120 and "…" in long


@pytest.mark.parametrize("width", [80, 120])
def test_columns_fit_the_width_and_the_longest_actions_whole(width: int) -> None:
    columns = columns_for(width)
    assert sum(c.width + 2 * CELL_PADDING for c in columns) + SCROLLBAR <= width
    assert ("Change" in [c.label for c in columns]) == (width >= 120)
    widths = {c.key: c.width for c in columns}
    for entry in ENTRIES:
        row = AuditRow(
            0,
            FROZEN,
            entry["actor"],
            entry["action"],
            entry["entity"],
            entry["entity_id"],
            entry["before"],
            entry["after"],
        )
        _, _, action, entity, entity_id, _ = audit_cells(row)
        assert len(str(action)) <= widths["action"], action
        assert len(str(entity)) <= widths["entity"], entity
        assert len(str(entity_id)) <= widths["entity_id"], entity_id
    for action in ("status:running", "status:stopped", "backfill_cancel", "edit_schedule"):
        assert len(action) <= widths["action"]


async def test_lists_newest_first_with_before_and_after_and_filters(
    test_settings: Settings, db: Database
) -> None:
    await seed(db)
    app = audit_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await audit_screen(pilot)
        assert shown(screen)[0] == ("bob", "region", "OLD_REGION")  # newest first
        assert len(shown(screen)) == len(ENTRIES)
        await pilot.press("down", "down", "down")  # bob's schedule edit
        detail = str(screen.query_one("#audit-detail", Static).render())
        assert "bob edit_schedule region DETROIT_METRO" in detail
        assert 'cron: "0 3 * * *" → "0 4 * * *"' in detail and "active" not in detail
        # `o`: only this entity; `a`: only this actor.
        await pilot.press("o")
        await wait_until(pilot, lambda: len(shown(screen)) == 2, "DETROIT_METRO's changes")
        assert {r[2] for r in shown(screen)} == {"DETROIT_METRO"}
        await pilot.press("a")
        await wait_until(pilot, lambda: {r[0] for r in shown(screen)} == {"bob"}, "bob's changes")
        assert len(shown(screen)) == 2
        # Typed: an experiment, then something that is not a filter (refused, the last kept).
        await pilot.press("slash", "ctrl+u")
        await type_text(pilot, "experiment:onboarding")
        await wait_until(
            pilot, lambda: shown(screen) == [("carol", "experiment", "onboarding")], ""
        )
        # In one edit: typed key by key on a loaded machine, the debounce may apply "… col".
        bar = screen.query_one(FilterBar)
        bar.value += " colour:red"
        await wait_until(pilot, lambda: screen.filter_error is not None, "the refusal")
        status = str(screen.query_one("#status-line", Static).render())
        assert "colour:red" in status
        assert shown(screen) == [("carol", "experiment", "onboarding")]
        await pilot.press("escape")  # clears the filter
        await wait_until(pilot, lambda: len(shown(screen)) == len(ENTRIES), "every change")


async def test_command_mode_opens_it_filtered(test_settings: Settings, db: Database) -> None:
    await seed(db)
    app = audit_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await audit_screen(pilot)
        await app.open_screen("audit", "post:42")
        await wait_until(pilot, lambda: shown(screen) == [("alice", "post", "42")], "post 42")


async def test_thousands_of_entries_never_cap_and_the_end_is_reachable(
    test_settings: Settings, db: Database
) -> None:
    many = [
        {
            "actor": f"op{n % 7}",
            "action": "pause",
            "entity": "region",
            "entity_id": f"R{n:05d}",
            "before": {"active": True},
            "after": {"active": False},
        }
        for n in range(2500)
    ]
    await seed(db, many)
    app = audit_app(test_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await audit_screen(pilot)
        table = screen.table
        assert table.row_count == 2500
        await wait_until(pilot, lambda: app.focused is table, "the table to have the keys")
        await pilot.press("end")
        await wait_until(
            pilot,
            lambda: (row := screen.selected()) is not None and row.entity_id == "R00000",
            "the oldest change read at the end",
            state=lambda: (
                f"cursor {table.cursor_row}, scroll {table.scroll_y}/{table.max_scroll_y}, "
                f"size {table.size}, window at {getattr(table.rows, 'offset', None)} "
                f"of {len(table.rows)}, loads {screen.loads}, loading {screen._loading}"
            ),
        )


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_audit_snapshot(snap_compare: Any, test_settings: Settings, size: Any) -> None:
    asyncio.run(_seed_fresh(test_settings))

    async def on_edit(pilot: Pilot[Any]) -> None:
        await settled(pilot)
        await pilot.press("down", "down", "down")
        await pilot.pause(0.1)

    app = audit_app(test_settings)
    assert snap_compare(app, terminal_size=size, run_before=on_edit)


async def _seed_fresh(settings: Settings) -> None:
    db = Database(settings)
    try:
        await seed(db)
    finally:
        await db.dispose()
