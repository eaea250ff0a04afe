"""Runs: the tick ledger, newest first; filter by region (`f`), status (`s`) or text (`/`)."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.data import backfill
from console.data.common import RunRow, RunStatus, current_actor, filtered, load_runs
from console.screens.live import LiveScreen
from console.widgets.filter_bar import FilterBar
from console.widgets.formatting import count, millis, status, when_seconds

STATUS_CYCLE: tuple[str | None, ...] = (None, *(s.value for s in RunStatus))

COLUMNS = (
    ("Region", "region", 18),
    ("Scheduled", "scheduled", 14),
    ("Lag", "lag", 7),
    ("Took", "took", 7),
    ("Status", "status", 9),  # "cancelled"
    ("#", "attempt", 2),
    ("Error", "error", 0),  # the rest of the width, cut with "…" (the line below shows it all)
)
ERROR_MIN = 7
SCROLLBAR = 2


def columns_for(width: int) -> list[tuple[str, str, int]]:
    fixed = sum(w + 2 for _, _, w in COLUMNS if w) + 2 + SCROLLBAR  # 2: a cell's padding
    return [(label, key, w or max(width - fixed, ERROR_MIN)) for label, key, w in COLUMNS]


def run_cells(row: RunRow) -> tuple[Text | str, ...]:
    # b: backfill (asked for a past range), m: manual (run now)
    code = row.region_code + (" (b)" if row.trigger else " (m)" if row.manual else "")
    lag = (
        "-"
        if row.started_at is None and row.status in ("skipped", "missed")
        else millis(row.lag_ms)
    )
    return (
        code,
        when_seconds(row.scheduled_for),
        lag,
        millis(row.duration_ms),
        status(row.status),
        str(row.attempt),
        Text(
            (row.error or "").replace("\n", " "),
            style="red" if row.error else "",
            no_wrap=True,
            overflow="ellipsis",
        ),
    )


class RunsScreen(LiveScreen):
    TITLE = "Runs"

    BINDINGS: ClassVar = [
        Binding(
            "s",
            "cycle_status",
            "status",
            tooltip="status filter: all, running, ok, …",
            id="runs.cycle_status",
        ),
        Binding(
            "f",
            "region_filter",
            "region",
            tooltip="only this region's runs / all",
            id="runs.region_filter",
        ),
        Binding(
            "c", "clear_filters", "clear", tooltip="clear every filter", id="runs.clear_filters"
        ),
        Binding(
            "slash", "filter", "filter", key_display="/", tooltip="filter by text", id="runs.filter"
        ),
        Binding(
            "x",
            "cancel_backfill",
            "cancel backfill",
            show=False,
            tooltip="cancel the selected region's queued backfill fire times",
            id="runs.cancel_backfill",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.region_code: str | None = None
        self.status_filter: str | None = None
        self.rows: list[RunRow] = []
        self.shown: list[RunRow] = []
        self.columns: list[tuple[str, str, int]] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(" ", id="detail")
        yield FilterBar("filter runs by region, status or error…")

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#runs", DataTable)

    @property
    def filter_text(self) -> str:
        return self.query_one(FilterBar).value.strip()

    async def fetch(self) -> list[RunRow]:
        return await load_runs(
            self.deck.db, region_code=self.region_code, status=self.status_filter
        )

    def on_resize(self) -> None:
        columns = columns_for(self.size.width)
        if columns == self.columns:
            return
        self.columns = columns
        self.table.clear(columns=True)
        for label, key, width in columns:
            self.table.add_column(label, key=key, width=width)
        self.shown = []  # the rows again, in the new columns
        self._render_table()

    def show(self, data: list[RunRow]) -> None:
        self.rows = data
        if not self.columns:
            self.on_resize()
        self._render_table()

    def _render_table(self) -> None:
        shown = filtered(self.rows, self.filter_text)
        if shown != self.shown or self.table.row_count != len(shown):
            table = self.table
            keep = (
                self.shown[table.cursor_row].id if 0 <= table.cursor_row < len(self.shown) else None
            )
            self.shown = shown
            table.clear()
            for row in shown:
                table.add_row(*run_cells(row), key=str(row.id))
            if keep is not None and str(keep) in table.rows:
                table.move_cursor(row=table.get_row_index(str(keep)), animate=False)
        self._show_detail()
        parts = [count(len(self.shown), "run")]
        if self.region_code:
            parts.append(f"region [b]{escape(self.region_code)}[/]")
        if self.status_filter:
            parts.append(f"status [b]{self.status_filter}[/]")
        if self.filter_text:
            parts.append(f"filter [b]{escape(self.filter_text)}[/]")
        self.set_status(" · ".join(parts) + f" · updated {self.deck.now():%H:%M:%S}")

    def selected(self) -> RunRow | None:
        cursor = self.table.cursor_row
        return self.shown[cursor] if 0 <= cursor < len(self.shown) else None

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#detail", Static)
        if row is None:
            filters = self.region_code or self.status_filter or self.filter_text
            detail.update("no runs match the filters" if filters else "no runs yet")
            return
        started = "not started"
        if row.started_at is not None:
            started = f"started {row.started_at:%H:%M:%S.%f}"[:-3] + f" (lag {millis(row.lag_ms)})"
        # The error first: it is what a person looks for, and the line may be cut at 80 columns.
        head = f"[b]{escape(row.region_code)}[/]" + (" manual" if row.manual else "")
        if row.trigger:
            head = f"[b]{escape(row.region_code)}[/] {row.trigger}"
            head += f" by {escape(row.requested_by or '?')}"
        head += f" {row.status}"
        if row.error:
            head += f": [red]{escape(row.error)}[/]"
        parts = [
            head,
            f"scheduled {when_seconds(row.scheduled_for)}",
            started,
            "still running" if row.status == "running" else f"took {millis(row.duration_ms)}",
            f"attempt {row.attempt}",
        ]
        if row.worker:
            parts.append(f"worker {escape(row.worker)}")
        text = " · ".join(parts)
        detail.update(text)

    def set_argument(self, code: str | None) -> None:
        """Show one region's runs (from the Regions screen's enter, or `:runs CODE`)."""
        self.region_code = code
        self.request_reload()

    @on(FilterBar.Changed)
    def _filter_changed(self) -> None:
        self._render_table()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_cycle_status(self) -> None:
        index = STATUS_CYCLE.index(self.status_filter)
        self.status_filter = STATUS_CYCLE[(index + 1) % len(STATUS_CYCLE)]
        self.notify(f"status: {self.status_filter or 'all'}", timeout=1.5)
        self.request_reload()

    def action_region_filter(self) -> None:
        if self.region_code is not None:
            self.region_code = None
        elif 0 <= self.table.cursor_row < len(self.shown):
            self.region_code = self.shown[self.table.cursor_row].region_code
        else:
            self.notify("no run selected to take the region from", severity="warning")
            return
        self.notify(f"region: {self.region_code or 'all'}", timeout=1.5)
        self.request_reload()

    def action_clear_filters(self) -> None:
        self.region_code = None
        self.status_filter = None
        self.query_one(FilterBar).action_clear()
        self.request_reload()

    def action_cancel_backfill(self) -> None:
        row = self.selected()
        if row is None or row.trigger is None:
            self.notify("select a backfill run (b) to cancel its queued ones", severity="warning")
            return
        if not self.deck.refuse_read_only("cancel a backfill"):
            self._write_cancel(row.region_code)

    @work(group="edit", exit_on_error=False)
    async def _write_cancel(self, code: str) -> None:
        async def write() -> int:
            redis = await self.deck.queue_pool()
            return await backfill.cancel(
                self.deck.db,
                redis,
                self.deck.settings,
                code,
                actor=current_actor(),
                now=self.deck.now(),
            )

        await self.run_edit(
            write(),
            failed="backfill not cancelled",
            done=lambda n: f"{code}: {n} queued backfill fire time(s) cancelled",
        )
