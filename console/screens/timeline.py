"""Timeline: the next 24 hours of fire times across all regions (none of the anchors have it).

A heat strip, one cell per hour (unicode blocks, darker is busier), then the busiest minutes:
how many regions fire on that minute and how many creators fall due then, with the regions
listed. `o` spreads the selected minute: it moves some of its regions' minute by +N (a cron
rewrite through the region edit path: validated, audited), previewed in a modal first.
The data (console.data.timeline) is computed in a thread: 10,000 regions stay responsive.
"""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable, Static

from console.data import timeline as data
from console.data.common import current_actor
from console.data.timeline import Minute, OffsetChange, Timeline
from console.screens.live import LiveScreen, row_at_cursor
from console.screens.offset_modal import OffsetModal
from console.widgets.formatting import count, when

BLOCKS = "▁▂▃▄▅▆▇█"
HEAT_STYLES = ("green", "green", "green", "yellow", "yellow", "dark_orange", "red", "bold red")
COLUMNS = (
    ("Minute", "at", 11),
    ("Regions", "regions", 7),
    ("Creators", "creators", 8),
    ("Due", "due", 44),
)


def heat_strip(timeline: Timeline, width: int) -> Text:
    """Two lines: the hour of each bucket, and a block as tall as its share of the busiest."""
    buckets = len(timeline.per_hour)
    cell = max(2, min(4, width // buckets))
    peak = max(timeline.per_hour) or 1
    hours, blocks = Text(), Text()
    for index, fires in enumerate(timeline.per_hour):
        hour = (timeline.hour0.hour + index) % 24
        hours.append(f"{hour:02d}".ljust(cell), style="dim")
        if fires == 0:
            blocks.append("·".ljust(cell), style="dim")
            continue
        level = min(len(BLOCKS) - 1, (fires * len(BLOCKS) - 1) // peak)
        blocks.append(BLOCKS[level] * (cell - 1) + " ", style=HEAT_STYLES[level])
    return Text("\n").join([hours, blocks])


def codes_text(codes: tuple[str, ...], budget: int) -> str:
    """As many codes as fit in `budget` characters, then how many more: never cut mid-code."""
    shown: list[str] = []
    used = 0
    for index, code in enumerate(codes):
        more = f" +{len(codes) - index:,} more"
        if used + len(code) + 2 + (len(more) if index < len(codes) - 1 else 0) > budget:
            return ", ".join(shown) + more if shown else more.strip()
        shown.append(code)
        used += len(code) + 2
    return ", ".join(shown)


def minute_cells(minute: Minute) -> tuple[str, ...]:
    shown = codes_text(minute.regions, COLUMNS[-1][2])
    return (when(minute.at), f"{len(minute.regions):,}", f"{minute.creators:,}", shown)


class TimelineScreen(LiveScreen):
    TITLE = "Timeline"
    refresh_s: ClassVar[float] = 30.0  # fire times move by the minute; an edit reloads at once

    BINDINGS: ClassVar = [
        Binding(
            "o",
            "offset",
            "offset",
            tooltip="spread the selected minute: move some of its regions by +N minutes",
            id="timeline.offset",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.timeline: Timeline | None = None
        self.shown: tuple[Minute, ...] = ()

    def compose_body(self) -> ComposeResult:
        yield Static(" ", id="heat")
        yield Static(" ", id="heat-legend")
        table: DataTable[str] = DataTable(id="busiest", cursor_type="row", zebra_stripes=True)
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        yield Static(" ", id="detail")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#busiest", DataTable)

    async def fetch(self) -> Timeline:
        return await data.load_timeline(self.deck.db, self.deck.now())

    def show(self, data: Timeline) -> None:
        self.timeline = data
        self._render_heat()
        table = self.table
        if data.busiest != self.shown:
            keep = row_at_cursor(table, self.shown)
            self.shown = data.busiest
            table.clear()
            for index, minute in enumerate(data.busiest):
                table.add_row(*minute_cells(minute), key=str(index))
            if keep is not None:
                same = [i for i, m in enumerate(self.shown) if m.at == keep.at]
                if same:
                    table.move_cursor(row=same[0], animate=False)
        self._show_detail()
        invalid = f" · {data.invalid} invalid cron(s)" if data.invalid else ""
        self.set_status(
            f"{data.fires:,} fire times of {data.regions:,} regions in 24 h{invalid}"
            f" · updated {self.deck.now():%H:%M:%S}"
        )

    def _render_heat(self) -> None:
        if self.timeline is None:
            return
        timeline = self.timeline
        self.query_one("#heat", Static).update(heat_strip(timeline, self.size.width - 2))
        peak = max(range(len(timeline.per_hour)), key=lambda i: timeline.per_hour[i])
        busiest = timeline.busiest[0] if timeline.busiest else None
        legend = f"UTC hours · peak {(timeline.hour0.hour + peak) % 24:02d}:00"
        legend += f" ({count(timeline.per_hour[peak], 'fire')})"
        if busiest is not None:
            legend += f" · peak minute {busiest.at:%H:%M} ({count(len(busiest.regions), 'region')})"
        self.query_one("#heat-legend", Static).update(legend)

    def on_resize(self, _event: Resize) -> None:
        self._render_heat()

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        minute = row_at_cursor(self.table, self.shown)
        detail = self.query_one("#detail", Static)
        if minute is None:
            detail.update("no fire time in the next 24 hours")
            return
        head = (
            f"{minute.at:%H:%M} {count(len(minute.regions), 'region')}, "
            f"{count(minute.creators, 'creator')} due: "
        )
        # Two lines of the screen's width, less padding: the rest is counted, not cut.
        budget = 2 * max(self.size.width - 2, 20) - len(head) - 12  # slack: words wrap
        detail.update(f"[b]{head[:5]}[/]{escape(head[5:] + codes_text(minute.regions, budget))}")

    def action_offset(self) -> None:
        minute = row_at_cursor(self.table, self.shown)
        if minute is None or self.timeline is None:
            self.notify("no minute selected to spread", severity="warning")
            return
        if self.deck.refuse_read_only("edit schedules"):
            return
        timeline = self.timeline

        def save(changes: list[OffsetChange] | None) -> None:
            if changes:
                self._write_offset(changes)

        self.app.push_screen(OffsetModal(minute, timeline), save)

    @work(group="edit", exit_on_error=False)
    async def _write_offset(self, changes: list[OffsetChange]) -> None:
        await self.run_edit(
            data.apply_offset(self.deck.db, changes, actor=current_actor(), now=self.deck.now()),
            failed="offset not applied",
            done=lambda n: (
                f"{n} region(s) moved: {changes[0].cron} …"
                if n > 1
                else f"{changes[0].code}: schedule is now {changes[0].cron}"
            ),
        )
