"""Overview (the landing screen): is the engine alive, is work flowing, is anything failing.

Engine replicas (engine.heartbeat) and per-queue worker figures (arq's health-check lines), the
consoles attached now with their actor, local or SSH (console.data.presence: one Redis read),
queue depth per queue (ready / deferred / running), the next runs across all regions,
failures in the last hour, pending dead letters, the size and oldest partition of event_log
and follower_sample, breaker state and quota use per platform, event ingestion, and small
charts of throughput, tick lag and events per minute.

Loads run through LiveScreen: never two at once, never behind a modal, backing off on errors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from console.data import ops as data_ops
from console.data import presence as data_presence
from console.data.common import NextRunCache
from console.data.ops import OverviewData, QueueCounts, WorkerReport
from console.data.presence import ConsoleLine
from console.screens.live import LiveScreen
from console.widgets.formatting import count, millis, when

HISTORY = 60  # throughput samples kept (one per refresh)


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "?"
    return millis(max(int((now - then).total_seconds() * 1000), 0))


def engine_lines(data: OverviewData, now: datetime) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Engine ", style="bold")
    if data.replicas:
        out.append(f"{count(len(data.replicas), 'replica')} alive", style="bold green")
        for replica in data.replicas:
            out.append(f"  {replica.name} ({replica.role}, up {_age(now, replica.started)})")
    else:
        reporting = sum(1 for w in data.workers if w.line)
        style = "bold green" if reporting else "bold red"
        queues = count(len(data.workers), "queue")
        out.append(f"workers reporting on {reporting} of {queues}", style=style)
        out.append("  (no replica heartbeats)", style="dim")
    out.append("\n")
    out.append(
        f"{'Queue':<8}{'ready':>7}{'deferred':>9}{'running':>8}"
        f"{'done':>8}{'failed':>7}{'retried':>8}{'ongoing':>8}  worker",
        style="bold",
    )
    workers = {w.queue: w for w in data.workers}
    for counts in data.counts:
        out.append("\n")
        out.append_text(_queue_line(counts, workers.get(counts.queue)))
    return out


def _queue_line(counts: QueueCounts, worker: WorkerReport | None) -> Text:
    line = Text(no_wrap=True)
    running = f"{counts.running}{'' if counts.running_exact else '+'}"
    line.append(f"{counts.queue:<8}{counts.ready:>7}{counts.deferred:>9}{running:>8}")
    if worker is None or worker.line is None:
        line.append(f"{'-':>8}{'-':>7}{'-':>8}{'-':>8}  ")
        line.append("none", style="bold red" if counts.ready else "dim")
        return line
    line.append(f"{worker.complete:>8}")
    line.append(f"{worker.failed:>7}", style="bold red" if worker.failed else "")
    line.append(f"{worker.retried:>8}", style="yellow" if worker.retried else "")
    line.append(f"{worker.ongoing:>8}  ")
    line.append("alive", style="green")
    return line


def consoles_text(consoles: tuple[ConsoleLine, ...]) -> Text:
    """One line: how many consoles are attached, then each one's actor and how (this one last
    of its kind marked "you"); the count comes first so a cut line still says how many."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Consoles ", style="bold")
    out.append(f"{len(consoles)} attached", style="bold green" if consoles else "dim")
    for console in consoles:
        out.append("  ")
        out.append(console.actor, style="bold" if console.me else "")
        how = console.kind if console.kind == "local" else f"ssh@{console.host}"
        out.append(f" ({how}{', you' if console.me else ''})", style="dim")
    return out


def next_runs_text(data: OverviewData) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Next runs (UTC)", style="bold")
    if not data.next_runs:
        out.append("\nno active region with a valid schedule", style="dim")
    for run in data.next_runs:
        out.append(f"\n{when(run.fire)}  {run.region}")
    return out


def health_text(data: OverviewData) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Failures 1h ", style="bold")
    out.append(str(data.failures_1h), style="bold red" if data.failures_1h else "green")
    out.append("   Dead letters ", style="bold")
    out.append(str(data.dead_letters), style="bold red" if data.dead_letters else "green")
    out.append_text(data_text(data))
    out.append("\nPlatforms  breaker  quota used", style="bold")
    if data.platforms is None:
        out.append("  n/a (not configured)", style="dim")
        return out
    if not data.platforms:
        out.append("  none configured", style="dim")
    for p in data.platforms:
        style = {"closed": "green", "open": "bold red", "half_open": "yellow"}.get(p.breaker, "")
        out.append(f"\n {p.platform:<9}")
        out.append(f"{p.breaker:<9}", style=style)
        share = p.used / p.limit if p.limit else 0.0
        out.append(
            f"{p.used}/{p.limit} per {p.per_s}s",
            style="bold red" if share >= 0.9 else ("yellow" if share >= 0.7 else ""),
        )
        if p.paused_for_s > 0:
            out.append(f" paused {p.paused_for_s:.0f}s", style="yellow")
    return out


_SHORT = {"event_log": "events", "follower_sample": "samples"}


def events_label(events_per_min: tuple[int, ...] | None, width: int = 80) -> str:
    """The events chart's title with its figures: the last whole minute and the 30 min total,
    in the longest form that fits `width` cells; "unknown" when they could not be read (not 0)."""
    if events_per_min is None:
        return "events/min: unknown"
    last = events_per_min[-2] if len(events_per_min) > 1 else 0
    total = sum(events_per_min)
    forms = (
        f"events/min: {last} (30 min: {total})",
        f"events/min: {last} ({short_number(total)}/30m)",
        f"events/min: {short_number(last)}",
    )
    return next((form for form in forms if len(form) <= width), forms[-1])


def short_number(n: int) -> str:
    """1234 as `1234`, 35012 as `35k`, 2_400_000 as `2.4M`: at most 4 or 5 cells."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def data_text(data: OverviewData) -> Text:
    """Each partitioned table's size and its oldest partition (what retention has kept)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    for index, table in enumerate(data.tables):
        out.append("\nData " if index == 0 else "\n     ", style="bold")
        oldest = table.oldest.strftime("%Y-%m-%d") if table.oldest is not None else "-"
        out.append(f"{_SHORT.get(table.table, table.table):<8}{size_text(table.bytes):>9}")
        out.append(f" from {oldest}", style="dim")
    return out


def flat_as_empty(values: Iterable[float]) -> list[float]:
    """Chart data; all zeros become no data (a Sparkline draws equal values as full bars)."""
    data = [float(v) for v in values]
    return data if any(data) else []


class OverviewScreen(LiveScreen):
    TITLE = "Overview"
    refresh_s = 2.0

    DEFAULT_CSS = """
    #ov-engine {
        height: auto;
        max-height: 8;
        padding: 0 1;
    }
    #ov-middle {
        height: auto;
        max-height: 8;
        margin-top: 1;
    }
    #ov-next, #ov-health {
        width: 1fr;
        height: auto;
        padding: 0 1;
    }
    #ov-consoles {
        height: 1;
        padding: 0 1;
    }
    #ov-engine, #ov-consoles, #ov-next, #ov-health, .ov-chart Static {
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    #ov-charts {
        height: 1fr;  /* the charts take the rows the tables leave: no empty rows below */
        min-height: 3;
        margin-top: 1;
    }
    .ov-chart {
        width: 1fr;
        padding: 0 1;
    }
    .ov-chart Static {
        height: 1;
        color: $text-muted;
    }
    .ov-chart Sparkline {
        height: 1fr;
        min-height: 2;
    }
    """

    BINDINGS: ClassVar = [
        Binding("u", "queues", "queues", tooltip="open the Queues screen", id="overview.queues"),
        Binding("g", "runs", "runs", tooltip="open the run ledger", id="overview.runs"),
        Binding(
            "l",
            "dead_letters",
            "dead letters",
            tooltip="open the dead letters",
            id="overview.dead_letters",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._next_runs = NextRunCache()
        self._last_complete: int | None = None
        self.throughput: deque[float] = deque(maxlen=HISTORY)
        self.data: OverviewData | None = None
        self.consoles: tuple[ConsoleLine, ...] = ()

    def compose_body(self) -> ComposeResult:
        yield Static(" ", id="ov-engine")
        yield Static(" ", id="ov-consoles")
        with Horizontal(id="ov-middle"):
            yield Static(" ", id="ov-next")
            yield Static(" ", id="ov-health")
        with Horizontal(id="ov-charts"):
            with Vertical(classes="ov-chart"):
                yield Static("jobs done", id="ov-throughput-label")
                yield Sparkline([], id="ov-throughput")
            with Vertical(classes="ov-chart"):
                yield Static("tick lag", id="ov-lag-label")
                yield Sparkline([], id="ov-lag")
            with Vertical(classes="ov-chart"):
                yield Static("events/min (30 min)", id="ov-events-label")
                yield Sparkline([], id="ov-events")

    def on_resize(self) -> None:
        # The events title's form depends on its width: fit it once the charts are laid out.
        self.call_after_refresh(self._fit_events_label)

    def _fit_events_label(self) -> None:
        if self.data is not None:
            label = self.query_one("#ov-events-label", Static)
            label.update(events_label(self.data.events_per_min, label.content_region.width or 80))

    async def fetch(self) -> tuple[OverviewData, tuple[ConsoleLine, ...]]:
        redis = await self.deck.queue_pool()
        data = await data_ops.load_overview(
            self.deck.db, redis, self.deck.settings, self.deck.now(), self._next_runs
        )
        consoles = await data_presence.load_consoles(redis, self.deck.settings, self.deck.presence)
        return data, consoles

    def show(self, loaded: tuple[OverviewData, tuple[ConsoleLine, ...]]) -> None:
        data, self.consoles = loaded
        self.data = data
        self.query_one("#ov-consoles", Static).update(consoles_text(self.consoles))
        now = self.deck.now()
        complete = sum(w.complete for w in data.workers)
        if self._last_complete is not None:
            # A worker restart resets arq's counters: count that as no progress, not negative.
            self.throughput.append(float(max(complete - self._last_complete, 0)))
        self._last_complete = complete
        self.query_one("#ov-engine", Static).update(engine_lines(data, now))
        self.query_one("#ov-next", Static).update(next_runs_text(data))
        self.query_one("#ov-health", Static).update(health_text(data))
        self.query_one("#ov-throughput", Sparkline).data = flat_as_empty(self.throughput)
        self.query_one("#ov-lag", Sparkline).data = flat_as_empty(data.lags_ms)
        last_lag = f"last {millis(data.lags_ms[-1])}" if data.lags_ms else "no ticks yet"
        self.query_one("#ov-lag-label", Static).update(f"tick lag: {last_lag}")
        self.query_one("#ov-events", Sparkline).data = flat_as_empty(data.events_per_min or ())
        self._fit_events_label()
        # The workers' own count since they started (the chart: per refresh); unknown, not 0,
        # when no worker reports. Known at the first read, so the title never waits on timing.
        done = str(complete) if any(w.line for w in data.workers) else "unknown"
        self.query_one("#ov-throughput-label", Static).update(f"jobs done: {done}")
        self.set_status(f"updated {now:%H:%M:%S} · u queues · g runs · l dead letters")

    async def action_queues(self) -> None:
        await self.deck.open_screen("queues")

    async def action_runs(self) -> None:
        await self.deck.open_screen("runs")

    async def action_dead_letters(self) -> None:
        await self.deck.open_screen("deadletters")
