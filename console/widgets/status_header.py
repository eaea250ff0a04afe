"""The one-line header on every screen: screen title, queue depth, engine liveness, mode, clock."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import work
from textual.reactive import reactive
from textual.widget import Widget

from console.data import EngineStatus, load_engine_status

if TYPE_CHECKING:
    from console.app import CreatordeckApp

REFRESH_S = 2.0
MAX_BACKOFF_S = 30.0


class StatusHeader(Widget):
    """Reads queue depth and engine health (engine.queue) in a worker; never blocks the UI."""

    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    engine: reactive[EngineStatus | None] = reactive(None)
    error: reactive[str | None] = reactive(None)
    clock: reactive[str] = reactive("")

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self._loading = False
        self._failures = 0
        self._wait_s = 0.0

    @property
    def deck(self) -> CreatordeckApp:
        return cast("CreatordeckApp", self.app)

    def on_mount(self) -> None:
        self._tick_clock()
        self.set_interval(1.0, self._tick_clock)
        self.set_interval(0.5, self._maybe_reload)
        self._reload()

    def _tick_clock(self) -> None:
        self.clock = self.deck.now().strftime("%H:%M:%S UTC")

    def _maybe_reload(self) -> None:
        # Nothing refreshes behind a modal or on a screen in the background.
        if self._loading or self.screen is not self.app.screen:
            return
        self._wait_s -= 0.5
        if self._wait_s <= 0:
            self._reload()

    def _reload(self) -> None:
        self._loading = True
        self._load()

    @work(group="status-header", exit_on_error=False)
    async def _load(self) -> None:
        try:
            redis = await self.deck.queue_pool()
            self.engine = await load_engine_status(redis, self.deck.settings, self.deck.now())
        except Exception as exc:  # Redis down: say so, keep the last figures, back off.
            self._failures += 1
            self.error = f"redis: {type(exc).__name__}"
            self._wait_s = min(REFRESH_S * 2**self._failures, MAX_BACKOFF_S)
        else:
            self._failures = 0
            self.error = None
            self._wait_s = REFRESH_S
        finally:
            self._loading = False

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {self.title} ", style="bold reverse")
        engine = self.engine
        if engine is None:
            line.append("  queue …", style="dim")
        else:
            line.append("  queue ")
            line.append(f"{engine.ready}", style="bold")
            line.append(" ready ")
            line.append(f"{engine.deferred}", style="bold")
            line.append(" deferred ")
            line.append(f"{engine.running}", style="bold")
            line.append(" running")
            line.append("  engine ")
            if engine.alive:
                line.append("alive", style="bold green")
            else:
                line.append("no report", style="bold red")
        if self.error:
            line.append(f"  {self.error}", style="bold red")
        right = Text(no_wrap=True)
        if self.deck.read_only:
            right.append(" READ-ONLY ", style="bold black on yellow")
            right.append(" ")
        right.append(self.clock + " ")
        pad = self.size.width - line.cell_len - right.cell_len
        if pad > 0:
            line.append(" " * pad)
            line.append_text(right)
        else:
            line = Text.assemble(line, " ", right)
            line.truncate(max(self.size.width, 1))
        return line
