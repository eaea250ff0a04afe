"""Regions: schedules, their next runs, the last run; edit, pause, run now, add, delete.

Every region is in the table: the rows are a snapshot of columns (console.data.region_columns)
that the VirtualTable reads a row at a time for the lines it paints. Nothing that walks every
region runs on the UI loop: a load builds its snapshot, and a filter its selection, in a thread;
the UI loop swaps the result in with one assignment (`set_rows`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static
from textual.worker import Worker

from console.data import backfill
from console.data import regions as data
from console.data.common import RegionRow, current_actor
from console.data.regions import (
    RegionColumns,
    RegionSelection,
    RegionsLoad,
    RegionTable,
    load_region_window,
    select,
)
from console.screens.backfill_modal import BackfillModal
from console.screens.dialogs import CronEditModal, RegionFormModal, ScheduleChange
from console.screens.live import LiveScreen
from console.widgets.filter_bar import FilterBar
from console.widgets.formatting import millis, status, when
from console.widgets.virtual_table import Column, VirtualTable

# A refresh reads the latest run only of the rows on and near the screen: this many screens'
# worth above and below the visible rows.
WINDOW_SCREENS = 1
FILTER_DEBOUNCE_ROWS = 1000
UNKNOWN = Text("…", style="dim")  # a latest run not read (the region was off screen)

# Most telling first: at 80 columns code, state, last run, cron and the next runs show; at 120
# the name too (before the timezone, which the detail line shows). The detail line under the
# table repeats the selected region in full.
COLUMNS = (
    Column("Code", "code", 17),
    Column("On", "on", 3),
    Column("Last", "last", 7),
    Column("Lag", "lag", 6),
    Column("Cron", "cron", 12),
    Column("Next 3 runs (UTC)", "next", 37, shrink_to=18),
    Column("Name", "name", 24, shrink_to=12, hide_below=100),
    Column("TZ", "tz", 16, hide_below=135),  # a name and three runs before the timezone
)


def region_key(row: RegionRow) -> str:
    return row.code


def region_cells(row: RegionRow) -> tuple[Text | str, ...]:
    if row.invalid is not None:
        next_runs = Text(f"invalid: {row.invalid}", style="bold red")
    elif not row.active:
        next_runs = Text("paused", style="dim")
    else:
        next_runs = Text(", ".join(when(fire) for fire in row.next_runs))
    known = row.last_known
    return (
        Text(row.code, style="bold" if row.active else "dim"),
        Text("on", style="green") if row.active else Text("off", style="yellow"),
        status(row.last_status) if known else UNKNOWN,
        millis(row.last_lag_ms) if known else UNKNOWN,
        row.cron,
        next_runs,
        row.name,
        row.timezone,
    )


Shown = RegionColumns | RegionSelection  # every region, or a filter's matches


@dataclass(frozen=True, slots=True)
class Loaded:
    """A load, and what the table shows of it, made off the UI loop."""

    load: RegionsLoad
    needle: str  # the filter `shown` was made for
    shown: Shown
    counts: tuple[int, int]  # active, invalid


class RegionsScreen(LiveScreen):
    TITLE = "Regions"

    BINDINGS: ClassVar = [
        # Short descriptions fit the footer at 80 columns; `?` help shows the tooltips.
        Binding(
            "e",
            "edit",
            "edit",
            tooltip="edit cron and timezone (previews 10 runs)",
            id="regions.edit",
        ),
        Binding(
            "space",
            "toggle_active",
            "pause",
            key_display="space",
            tooltip="pause/resume",
            id="regions.toggle_active",
        ),
        Binding("n", "new", "new", tooltip="new region", id="regions.new"),
        Binding("d", "delete", "delete", tooltip="delete region (asks first)", id="regions.delete"),
        Binding("r", "run_now", "run", tooltip="run now (a manual tick)", id="regions.run_now"),
        Binding(
            "b",
            "backfill",
            "backfill",
            show=False,
            tooltip="backfill past fire times (max 1,000)",
            id="regions.backfill",
        ),
        Binding(
            "slash",
            "filter",
            "filter",
            key_display="/",
            tooltip="filter by text",
            id="regions.filter",
        ),
        Binding(
            "enter",
            "show_runs",
            "runs",
            show=False,
            tooltip="runs of the region",
            id="regions.show_runs",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows = RegionColumns()
        self.shown: Shown = self.rows
        self._shown_for = ""  # the filter `shown` was made for
        self.matched = 0
        self.window: frozenset[str] = frozenset()
        self._counts = (0, 0)  # active, invalid
        self._regions = RegionTable()

    def compose_body(self) -> ComposeResult:
        yield VirtualTable(COLUMNS, region_cells, region_key, id="regions")
        yield Static(" ", id="detail")
        yield FilterBar("filter regions by code, name, cron or timezone…")

    async def fetch(self) -> Loaded:
        load = await load_region_window(
            self.deck.db, self.deck.now(), self._regions, self._window_codes
        )
        needle = self.filter_text
        if load.rows is self.rows and needle == self._shown_for:
            return Loaded(load, needle, self.shown, self._counts)  # nothing to redraw
        return await asyncio.to_thread(self._select, load, needle)

    @staticmethod
    def _select(load: RegionsLoad, needle: str) -> Loaded:
        """(In a thread) the filter's matches and the counts: each a pass over every region."""
        rows = load.rows
        return Loaded(load, needle, select(rows, needle), (rows.active_count, rows.invalid_count))

    def _window_codes(self) -> list[str] | None:
        """The regions whose latest run a load reads: those on screen and a screen around."""
        height = max(self.table.size.height, 24)
        if not self.shown:
            return None
        top = round(self.table.scroll_y)
        start = max(0, top - height * WINDOW_SCREENS)
        return self.shown.codes_between(start, top + height * (1 + WINDOW_SCREENS))

    def _window_is_stale(self) -> bool:
        top = round(self.table.scroll_y)
        codes = self.shown.codes_between(top, top + self.table.size.height)
        return any(code not in self.window for code in codes)

    def _tick(self) -> None:
        # Scrolled or jumped past the rows whose latest run was read: read them now.
        if not self._loading and self.loads and self._window_is_stale():
            self._reload_asked = True
        super()._tick()

    def show(self, data: Loaded) -> None:
        self.window = data.load.window
        if data.load.rows is not self.rows or data.shown is not self.shown:
            self.rows, self._counts = data.load.rows, data.counts
            self._swap(data.shown, data.needle)
        if data.needle != self.filter_text:  # typed while the load ran: filter it again
            self._apply_filter()
        self._show_status()

    def _swap(self, shown: Shown, needle: str) -> None:
        """Hand the table its new rows: one assignment, whatever their number."""
        self.shown, self._shown_for, self.matched = shown, needle, len(shown)
        self.table.set_rows(shown)
        self._show_detail()

    def _show_status(self) -> None:
        active, invalid = self._counts
        text = f"{len(self.rows)} regions, {active} active"
        if invalid:
            text += f", [b red]{invalid} invalid[/]"
        if self._shown_for:
            text += f" · filter [b]{escape(self._shown_for)}[/]: {self.matched} match"
        self.set_status(f"{text} · updated {self.deck.now():%H:%M:%S}")

    @property
    def filter_text(self) -> str:
        return self.query_one(FilterBar).value.strip()

    @property
    def table(self) -> VirtualTable[RegionRow]:
        return self.query_one("#regions", VirtualTable)

    def selected(self) -> RegionRow | None:
        return self.table.row_at_cursor()

    @on(VirtualTable.RowHighlighted)
    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#detail", Static)
        if row is None:
            detail.update("no region selected · [b]n[/] new region" if not self.rows else " ")
            return
        if row.invalid:
            schedule = f"[b red]invalid schedule:[/] {escape(row.invalid)}"
        elif not row.active:
            schedule = "[yellow]paused[/] (space resumes)"
        else:
            schedule = "next " + ", ".join(when(fire) for fire in row.next_runs)
        last = "never run" if row.last_known else "last run not read yet"
        if row.last_status:
            last = (
                f"last {when(row.last_scheduled)} {row.last_status} lag {millis(row.last_lag_ms)}"
            )
        detail.update(
            f"[b]{escape(row.code)}[/] {escape(row.name)} · {escape(row.cron)} "
            f"{escape(row.timezone)} · {schedule} · {last}"
        )

    @on(FilterBar.Changed)
    def _filter_changed(self) -> None:
        if len(self.rows) <= FILTER_DEBOUNCE_ROWS:  # few rows: at every key
            self._apply_filter()

    @on(FilterBar.Settled)
    def _filter_settled(self) -> None:
        if len(self.rows) > FILTER_DEBOUNCE_ROWS:  # thousands: once typing pauses
            self._apply_filter()

    def _apply_filter(self) -> Worker[None]:
        return self._refilter(self.rows, self.filter_text)

    @work(group="filter", exclusive=True, exit_on_error=False)
    async def _refilter(self, rows: RegionColumns, needle: str) -> None:
        shown = await asyncio.to_thread(select, rows, needle)  # ~5-20 ms at 100,000 regions
        if rows is self.rows:  # else a load swapped in newer rows (and filters them itself)
            self._swap(shown, needle)
            self._show_status()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(VirtualTable.RowSelected)
    async def _row_selected(self) -> None:
        await self.action_show_runs()

    async def action_show_runs(self) -> None:
        row = self.selected()
        await self.deck.open_screen("runs", row.code if row else None)

    # Edits: refuse in read-only mode, ask in a modal, write in a worker, then reload.

    def _target(self, verb: str) -> RegionRow | None:
        if self.deck.refuse_read_only(verb):
            return None
        row = self.selected()
        if row is None:
            self.notify(f"no region to {verb}", severity="warning")
        return row

    def action_edit(self) -> None:
        row = self._target("edit")
        if row is None:
            return

        def save(change: ScheduleChange | None) -> None:
            if change is not None:
                self._write_schedule(row.code, change, row.version)

        self.app.push_screen(CronEditModal(row.code, row.cron, row.timezone, self.deck.now), save)

    @work(group="edit", exit_on_error=False)
    async def _write_schedule(self, code: str, change: ScheduleChange, version: int) -> None:
        await self.run_edit(
            data.set_schedule(
                self.deck.db,
                code,
                change.cron,
                change.timezone,
                actor=current_actor(),
                now=self.deck.now(),
                version=version,  # the version on screen: a stale save is refused
            ),
            failed="not saved",
            done=lambda _: f"{code}: schedule is now {change.cron} ({change.timezone})",
        )

    def action_toggle_active(self) -> None:
        row = self._target("pause or resume")
        if row is not None:
            self._write_active(row.code, not row.active, row.version)

    @work(group="edit", exit_on_error=False)
    async def _write_active(self, code: str, active: bool, version: int) -> None:
        await self.run_edit(
            data.set_active(
                self.deck.db,
                code,
                active,
                actor=current_actor(),
                now=self.deck.now(),
                version=version,
            ),
            failed=f"could not {'resume' if active else 'pause'} {code}",
            done=lambda _: f"{code} {'resumed' if active else 'paused'}",
        )

    def action_new(self) -> None:
        if self.deck.refuse_read_only("add regions"):
            return

        def save(region: data.RegionInput | None) -> None:
            if region is not None:
                self._write_new(region)

        self.app.push_screen(RegionFormModal(), save)

    @work(group="edit", exit_on_error=False)
    async def _write_new(self, region: data.RegionInput) -> None:
        await self.run_edit(
            data.add_region(self.deck.db, region, actor=current_actor(), now=self.deck.now()),
            failed="not created",
            done=lambda _: f"{region.code} created",
        )

    def action_delete(self) -> None:
        row = self._target("delete")
        if row is None:
            return

        self.confirm(
            f"Delete region [b]{escape(row.code)}[/] ({escape(row.name)})?",
            lambda: self._write_delete(row.code, row.version),
        )

    @work(group="edit", exit_on_error=False)
    async def _write_delete(self, code: str, version: int) -> None:
        await self.run_edit(
            data.remove_region(self.deck.db, code, actor=current_actor(), version=version),
            failed="not deleted",
            done=lambda _: f"{code} deleted",
        )

    def action_run_now(self) -> None:
        row = self._target("run")
        if row is not None:
            self._enqueue_now(row.code)

    @work(group="edit", exit_on_error=False)
    async def _enqueue_now(self, code: str) -> None:
        fire = self.deck.now().replace(microsecond=0)

        async def write() -> bool:
            redis = await self.deck.queue_pool()
            return await data.run_now(
                self.deck.db, redis, self.deck.settings, code, fire, actor=current_actor()
            )

        def done(added: bool) -> str:
            if added:
                return f"{code}: tick queued for {fire:%H:%M:%S} (manual)"
            return f"{code}: a manual tick for this second is already queued"

        await self.run_edit(write(), failed=f"could not run {code}", done=done)

    def action_backfill(self) -> None:
        row = self._target("backfill")
        if row is None or self.deck.refuse_read_only("backfill"):
            return

        def save(chosen: backfill.BackfillPlan | None) -> None:
            if chosen is not None:
                self._write_backfill(row.code, chosen)

        self.app.push_screen(BackfillModal(row.code, row.cron, row.timezone, self.deck.now), save)

    @work(group="edit", exit_on_error=False)
    async def _write_backfill(self, code: str, chosen: backfill.BackfillPlan) -> None:
        async def write() -> backfill.BackfillReport:
            redis = await self.deck.queue_pool()
            return await backfill.request(
                self.deck.db,
                redis,
                self.deck.settings,
                code,
                chosen.start,
                chosen.end,
                actor=current_actor(),
                now=self.deck.now(),
            )

        await self.run_edit(write(), failed="backfill not queued", done=lambda r: r.line())
