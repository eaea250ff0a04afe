"""The one-line header on every screen: screen title, queue depth, engine liveness, mode, clock.

It never vouches for what it could not check: "engine: alive" only from a fresh arq health
check read from Redis just now (the key expires when no engine writes it); when Redis cannot be
read it says "redis down" and "engine: unknown" instead of last figures, and "db down" when
Postgres does not answer. An app that supervises background processes (the demo) reports their
deaths here.

Layout: title, what is down, the engine, the alerts, the queue; the clock (and READ-ONLY) at the
right end always show. Where the line does not fit, the queue gives way first (fewer words, then
left out), then the alerts (to their firing count); it reads as words at 80 columns.

Cost per refresh (every 2 s on the screen on top, backing off on errors): three Redis reads and
one `SELECT 1`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

from rich.text import Text
from textual import work
from textual.reactive import reactive
from textual.widget import Widget

from console.data.common import STORE_ERRORS, EngineStatus, load_engine_status
from console.widgets.alerts_line import AlertsBadge, alerts_line
from console.widgets.backoff import Backoff

if TYPE_CHECKING:
    from console.deck import Deck

REFRESH_S = 2.0
TICK_S = 0.5
PING_TIMEOUT_S = 5.0


@runtime_checkable
class ReportsBackground(Protocol):
    """An app that runs background processes and can say which of them died
    (console.demo.supervisor)."""

    def background_problems(self) -> list[str]: ...


class StatusHeader(Widget):
    """Reads queue depth and engine health (engine.tick_queue) in a worker; never blocks the UI."""

    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    engine: reactive[EngineStatus | None] = reactive(None)  # None: not read (yet, or now)
    error: reactive[str | None] = reactive(None)  # Redis could not be read: why
    db_error: reactive[str | None] = reactive(None)  # Postgres did not answer: why
    background: reactive[tuple[str, ...]] = reactive(())
    clock: reactive[str] = reactive("")
    alerts: reactive[AlertsBadge | None] = reactive(None)

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self._loading = False
        self.backoff = Backoff(REFRESH_S)

    @property
    def deck(self) -> Deck:
        return cast("Deck", self.app)

    def on_mount(self) -> None:
        self._tick_clock()
        self.set_interval(1.0, self._tick_clock)
        self.set_interval(TICK_S, self._maybe_reload)
        self._reload()

    def _tick_clock(self) -> None:
        self.clock = self.deck.now().strftime("%H:%M:%S UTC")

    def _poll_background(self) -> None:
        if isinstance(self.app, ReportsBackground):
            self.background = tuple(self.app.background_problems())

    def _maybe_reload(self) -> None:
        self._poll_background()
        # Nothing refreshes behind a modal or on a screen in the background.
        if self._loading or self.screen is not self.app.screen:
            return
        if self.backoff.tick(TICK_S):
            self._reload()

    def _reload(self) -> None:
        self._loading = True
        self._load()

    @work(group="status-header", exit_on_error=False)
    async def _load(self) -> None:
        self.alerts = await alerts_line(self.deck)  # never raises: says what it could not read
        try:
            try:
                redis = await self.deck.queue_pool()
                self.engine = await load_engine_status(redis, self.deck.settings, self.deck.now())
                self.error = None
            except STORE_ERRORS as exc:  # Redis down: say so; figures read before say nothing now.
                self.engine = None
                self.error = type(exc).__name__
            try:
                await asyncio.wait_for(self.deck.db.ping(), PING_TIMEOUT_S)
                self.db_error = None
            except STORE_ERRORS as exc:  # a timeout is an OSError too
                self.db_error = type(exc).__name__
        finally:
            self._loading = False
        # Back off while either store fails, so a console left open does not hammer it.
        if self.error is not None or self.db_error is not None:
            self.backoff.failed()
        else:
            self.backoff.succeeded()

    def _engine(self) -> Text:
        out = Text("  engine: ", no_wrap=True)
        if self.engine is None:
            out.append("unknown" if self.error is not None else "…", style="bold yellow")
        elif self.engine.alive:
            out.append("alive", style="bold green")
        else:
            out.append("no report", style="bold red")
        return out

    def _queue(self, level: int) -> Text:
        """The queue at `level` 0 (all in words) to 3 (left out): what gives way first at 80."""
        out = Text(no_wrap=True)
        engine = self.engine
        if engine is None or level >= 3:  # unknown figures are not shown; "engine: …" says why
            return out
        parts = [
            (engine.ready, "ready"),
            (engine.deferred, "deferred"),
            (engine.running, "running"),
        ]
        if level == 2:
            parts = [parts[0], parts[2]]  # deferred jobs wait on purpose: they matter least
        out.append("  queue: " if level == 0 else "  ")
        for i, (count, word) in enumerate(parts):
            if i:
                out.append(", ")
            out.append(str(count), style="bold")
            out.append(f" {word}")
        return out

    def _line(self, queue_level: int, alerts_full: bool) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {self.title} ", style="bold reverse")
        # What is down first (short), then what died, then the engine, the alerts and the queue:
        # the segments to the right give way first (shorter forms, then left out).
        if self.error is not None:
            line.append("  redis down", style="bold red")
        if self.db_error is not None:
            line.append("  db down", style="bold red")
        if self.background:
            line.append(f"  {'; '.join(self.background)}", style="bold red")
        line.append_text(self._engine())
        if self.alerts is not None:
            line.append_text(self.alerts.full if alerts_full else self.alerts.compact)
        line.append_text(self._queue(queue_level))
        return line

    def render(self) -> Text:
        right = Text(no_wrap=True)
        if self.deck.read_only:
            right.append(" READ-ONLY ", style="bold black on yellow")
            right.append(" ")
        right.append(self.clock + " ")
        # The mode and the clock always show, two cells clear of the rest.
        room = self.size.width - right.cell_len - 2
        forms = [(0, True), (1, True), (2, True), (3, True), (3, False)]
        line = self._line(*forms[-1])
        for queue_level, alerts_full in forms:
            candidate = self._line(queue_level, alerts_full)
            if candidate.cell_len <= room:
                line = candidate
                break
        if line.cell_len > room:  # only a long list of dead processes gets here
            line.truncate(max(room, 1), overflow="ellipsis")
        line.append(" " * (self.size.width - right.cell_len - line.cell_len))
        line.append_text(right)
        line.truncate(max(self.size.width, 1))
        return line
