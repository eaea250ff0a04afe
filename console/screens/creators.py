"""Creators: latest followers, 24 h / 7 d change, growth, a sparkline; platform health; detail.

Filters: `/` text (handle or name), `g` region, `p` platform, `s` status (each cycles through
the values, "all" first). `enter` opens the creator with a follower chart; `space` pauses or
resumes tracking. The line above the table shows each platform's breaker and quota use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from console.data import creators as data
from console.data.common import STORE_ERRORS
from console.data.creators import CreatorRow, CreatorStatus, TrackedPlatform
from console.screens.live import LiveScreen, describe
from console.widgets.deck_footer import DeckFooter
from console.widgets.filter_bar import FilterBar
from console.widgets.formatting import count as plural
from console.widgets.formatting import when
from console.widgets.status_header import StatusHeader
from console.widgets.virtual_table import (
    Column,
    VirtualTable,
    Window,
    window_is_stale,
    window_offset,
)

if TYPE_CHECKING:
    from console.deck import Deck

COLUMNS = (
    Column("Handle", "handle", 16),
    Column("Plat", "platform", 5),
    Column("Region", "region", 17, shrink_to=10),
    Column("Status", "status", 7),
    Column("Followers", "followers", 10),
    Column("24h", "d1", 7),
    Column("7d", "d7", 7),
    Column("Grw%", "growth", 6, hide_below=90),  # at 80 columns the counts come first
    Column("Trend", "spark", 12, hide_below=95),
    Column("Fetched", "fetched", 11, hide_below=110),
)
PLACEHOLDER = (Text("…", style="dim"),)
STATUS_STYLES = {"active": "green", "paused": "yellow", "gone": "dim", "needs_auth": "bold red"}
BREAKER_STYLES = {"closed": "green", "open": "bold red", "half_open": "yellow"}
PLATFORMS = (None, *(p.value for p in TrackedPlatform))
STATUSES = (None, *(s.value for s in CreatorStatus))


def compact(value: int | None) -> str:
    if value is None:
        return "-"
    size = abs(value)
    if size >= 10_000_000:
        return f"{value / 1_000_000:.1f}M"
    if size >= 100_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,}"


def count(value: int | None) -> str:
    """A figure, or `?` when the platform has not told us yet (never 0 for unknown)."""
    return "?" if value is None else f"{value:,}"


def series_label(points: int, resolution: str) -> str:
    """What the chart draws: raw samples, or buckets of a resolution then the newest samples."""
    if resolution == "raw":
        return f"{points:,} raw samples"
    return f"{points:,} points: {resolution} buckets, then raw samples"


def followers_text(value: int | None) -> str:
    return "followers not fetched yet" if value is None else f"{value:,} followers"


def signed(value: int | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    style = "green" if value > 0 else "red" if value < 0 else "dim"
    return Text(("+" if value > 0 else "") + compact(value), style=style)


def creator_cells(row: CreatorRow | None) -> tuple[Text | str, ...]:
    if row is None:  # not read yet: the load after the scroll brings it
        return PLACEHOLDER
    growth = (
        Text(f"{row.growth_7d_pct:+.1f}", style="green" if row.growth_7d_pct >= 0 else "red")
        if row.growth_7d_pct is not None
        else Text("-", style="dim")
    )
    return (
        Text(row.handle, style="bold" if row.status == "active" else "dim"),
        row.platform,
        row.region_code or "-",
        Text(row.status.replace("needs_auth", "auth!"), style=STATUS_STYLES.get(row.status, "")),
        compact(row.followers),
        signed(row.change_24h),
        signed(row.change_7d),
        growth,
        Text(data.sparkline(row.spark), style="cyan"),
        when(row.last_fetched_at),
    )


def creator_key(row: CreatorRow | None) -> int | None:
    return row.id if row is not None else None


def creator_id(row: CreatorRow) -> int:
    return row.id


def health_line(health: tuple[data.PlatformHealth, ...]) -> Text:
    line = Text("platforms: ")
    for item in health:
        line.append(f"{item.platform} ", style="bold")
        line.append(item.breaker.replace("_", "-"), style=BREAKER_STYLES.get(item.breaker, ""))
        line.append(f" {item.used}/{item.limit} per {item.per_s}s")
        if item.paused_for_s > 0:
            line.append(f" paused {item.paused_for_s:.0f}s", style="yellow")
        line.append("  ")
    return line


def _next(values: tuple[str | None, ...], current: str | None) -> str | None:
    index = values.index(current) if current in values else 0
    return values[(index + 1) % len(values)]


class CreatorsScreen(LiveScreen):
    TITLE = "Creators"
    refresh_s = 5.0

    BINDINGS: ClassVar = [
        Binding(
            "enter", "open", "open", tooltip="the creator's follower chart", id="creators.open"
        ),
        Binding(
            "g", "cycle_region", "region", tooltip="filter: next region", id="creators.cycle_region"
        ),
        Binding(
            "p",
            "cycle_platform",
            "platform",
            tooltip="filter: next platform",
            id="creators.cycle_platform",
        ),
        Binding(
            "s", "cycle_status", "status", tooltip="filter: next status", id="creators.cycle_status"
        ),
        Binding(
            "slash",
            "filter",
            "filter",
            key_display="/",
            tooltip="filter by handle/name",
            id="creators.filter",
        ),
        Binding(
            "space",
            "toggle_status",
            "pause",
            key_display="space",
            tooltip="pause/resume tracking",
            id="creators.toggle_status",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filters = data.CreatorFilters()
        self.view: data.CreatorsView | None = None
        self.health: tuple[data.PlatformHealth, ...] = ()

    def compose_body(self) -> ComposeResult:
        yield Static(" ", id="health")
        yield VirtualTable(COLUMNS, creator_cells, creator_key, id="creators")
        yield Static(" ", id="detail")
        yield FilterBar("filter creators by handle or name…")

    async def fetch(self) -> tuple[data.CreatorsView, tuple[data.PlatformHealth, ...] | None]:
        view = await data.load_creators(
            self.deck.db, self.deck.now(), self.filters, self._window_offset()
        )
        health = await data.platform_health_or_none(self.deck)  # None: the table still shows
        return view, health

    def show(
        self, loaded: tuple[data.CreatorsView, tuple[data.PlatformHealth, ...] | None]
    ) -> None:
        view, health = loaded
        if health is not None:
            self.health = health
            self.query_one("#health", Static).update(health_line(health))
        else:
            self.query_one("#health", Static).update(Text("platforms: redis unreachable", "red"))
        if view.filters != self.filters:
            return  # the filters changed while this load ran; the next load is on its way
        if self.view is None or view != self.view:
            self.table.set_rows(
                Window(view.rows, view.offset, view.total, creator_id)
            )  # O(1): paints only what shows
        self.view = view
        counts = ", ".join(f"{n} {s}" for s, n in view.by_status) or "no creators yet"
        f = self.filters
        shown = " ".join(
            f"{label}=[b]{escape(value)}[/]"
            for label, value in (
                ("region", f.region),
                ("platform", f.platform),
                ("status", f.status),
                ("text", f.search),
            )
            if value
        )
        self.set_status(
            f"{view.total} shown · {counts}"
            + (f" · filter {shown}" if shown else "")
            + f" · updated {self.deck.now():%H:%M:%S}"
        )
        self._show_detail()

    def _window_offset(self) -> int:
        return window_offset(self.table, data.WINDOW_ROWS)

    def _tick(self) -> None:
        # Scrolled or jumped past the rows read: read the window there now.
        rows = self.table.rows
        if isinstance(rows, Window) and not self._loading and window_is_stale(self.table, rows):
            self._reload_asked = True
        super()._tick()

    @property
    def table(self) -> VirtualTable[CreatorRow | None]:
        return self.query_one("#creators", VirtualTable)

    def selected(self) -> CreatorRow | None:
        return self.table.row_at_cursor()

    @on(VirtualTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        self._tick()  # a jump past the rows read reads the window there now, not a tick later
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#detail", Static)
        if row is None:
            if self.view is not None and self.view.total:
                detail.update(" ")  # a row not read yet: the next load brings it
                return
            detail.update("no creators · import some: `creatordeck creators import FILE.csv`")
            return
        error = f" · [red]{escape(row.last_error[:80])}[/]" if row.last_error else ""
        detail.update(
            f"[b]{escape(row.display_name or row.handle)}[/] @{escape(row.handle)} "
            f"({row.platform}) · region {escape(row.region_code or '-')}"
            f" · {followers_text(row.followers)}{error}"
        )

    def _refilter(self, **changes: str | None) -> None:
        values = {
            "region": self.filters.region,
            "platform": self.filters.platform,
            "status": self.filters.status,
            "search": self.filters.search,
        }
        values.update(changes)
        self.filters = data.CreatorFilters(**values)
        self.table.move_cursor(row=0)  # a new list: start at its top
        self.request_reload()

    def action_cycle_region(self) -> None:
        regions = (None, *(self.view.regions if self.view else ()))
        self._refilter(region=_next(regions, self.filters.region))

    def action_cycle_platform(self) -> None:
        self._refilter(platform=_next(PLATFORMS, self.filters.platform))

    def action_cycle_status(self) -> None:
        self._refilter(status=_next(STATUSES, self.filters.status))

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(FilterBar.Settled)
    def _apply_filter(self) -> None:
        text = self.query_one(FilterBar).value.strip()
        self._refilter(search=text or None)

    @on(VirtualTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(CreatorDetailScreen(row.id, row.handle))

    def action_toggle_status(self) -> None:
        if self.deck.refuse_read_only("pause or resume creators"):
            return
        row = self.selected()
        if row is None:
            return
        if row.status not in ("active", "paused"):
            self.notify(
                f"@{row.handle} is {row.status}: requeue it from :deadletters", severity="warning"
            )
            return
        target = CreatorStatus.PAUSED if row.status == "active" else CreatorStatus.ACTIVE
        self._write_status(row.id, row.handle, target)

    @work(group="edit", exit_on_error=False)
    async def _write_status(self, creator_id: int, handle: str, target: CreatorStatus) -> None:
        await self.run_edit(
            data.set_creator_status(self.deck.db, creator_id, target),
            failed="not changed",
            done=lambda _: f"@{handle} is now {target.value}",
        )


class CreatorDetailScreen(Screen[None]):
    """One creator: its numbers, a follower chart over the last 30 days, its dead letters."""

    BINDINGS: ClassVar = [
        Binding("escape", "app.pop_screen", "back", key_display="esc", id="creator_chart.back"),
        Binding("r", "reload", "reload", id="creator_chart.reload"),
    ]
    CHART_HEIGHT = 10

    def __init__(self, creator_id: int, handle: str) -> None:
        super().__init__()
        self.creator_id = creator_id
        self.handle = handle
        self.loads = 0

    def compose(self) -> ComposeResult:
        yield StatusHeader(f"Creator @{self.handle}")
        yield Static("loading…", id="creator-body")
        yield Static(" ", id="status-line")
        yield DeckFooter()

    def on_mount(self) -> None:
        self.action_reload()

    @work(group="creator-detail", exclusive=True, exit_on_error=False)
    async def action_reload(self) -> None:
        deck = cast("Deck", self.app)
        try:
            detail = await data.load_creator_detail(deck.db, self.creator_id, deck.now())
        except STORE_ERRORS as exc:
            self.query_one("#status-line", Static).update(
                f"[b red]load failed[/] ({escape(describe(exc))})"
            )
            return
        self.draw(detail)
        self.loads += 1

    def draw(self, detail: data.CreatorDetail | None) -> None:
        body = self.query_one("#creator-body", Static)
        if detail is None:
            body.update("this creator no longer exists")
            return
        c = detail.creator
        contact = f" · {escape(c.contact_url)}" if c.contact_url else ""
        error = f"\n[red]last error: {escape(c.last_error[:200])}[/]" if c.last_error else ""
        letters = (
            f"\n[yellow]{plural(len(detail.letters), 'dead letter')}: see :deadletters[/]"
            if detail.letters
            else ""
        )
        text = Text.from_markup(
            f"[b]{escape(c.display_name or c.handle)}[/] @{escape(c.handle)} · {c.platform} "
            f"{escape(c.external_id)} · region {c.region_code or '-'} · {c.status}{contact}\n"
            f"{followers_text(c.followers)} · following {count(c.following)} · "
            f"posts {count(c.posts)} · views {count(c.views)}\n"  # a line each: no time cut in two
            f"fetched {when(c.last_fetched_at)} · etag {escape(c.etag or '-')}{error}{letters}\n"
        )
        # Facts and chart are one widget of a fixed (1fr) height: two auto-height widgets that
        # change height together could be left at their old height by Textual 8.2 on a busy
        # machine (the facts cut to one line), and a fixed height has no such layout to lose.
        text.append_text(self._chart(detail))
        body.update(text)

        self.query_one("#status-line", Static).update(
            f"{series_label(len(detail.samples), detail.resolution)} (last 30 days)"
            " · esc back · r reload"
        )

    def _chart(self, detail: data.CreatorDetail) -> Text:
        values = [s.followers for s in detail.samples if s.followers is not None]
        if len(values) < 2:
            return Text(f"{len(values)} sample(s) so far: the chart needs two")
        width = max(self.size.width - 14, 10)
        lines = data.chart(values, width, self.CHART_HEIGHT)
        high, low = compact(max(values)), compact(min(values))
        body = Text()
        for index, line in enumerate(lines):
            label = high if index == 0 else low if index == len(lines) - 1 else ""
            body.append(f"{label:>10} ", style="dim")
            body.append(line + "\n", style="cyan")
        first, last = detail.samples[0].at, detail.samples[-1].at
        body.append(f"{'':>11}{when(first)} … {when(last)} UTC", style="dim")
        return body
