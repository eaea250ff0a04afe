"""The base of every data screen: a header, a body, a status line, and a refresh loop.

The loop: a load runs in a Textual worker, never two at once, only while the screen is the one
on top (nothing refreshes behind a modal or on a screen in the background), every
`refresh_s` seconds; on error the status line says what failed, the last data stays on
screen, and the next try waits twice as long (up to `MAX_BACKOFF_S`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from console.app import CreatordeckApp

TICK_S = 0.25
MAX_BACKOFF_S = 30.0


Row = TypeVar("Row")
Result = TypeVar("Result")


def row_at_cursor(table: DataTable[Any], rows: Sequence[Row]) -> Row | None:
    """The row under the table's cursor, or None (empty table, cursor off the rows)."""
    if 0 <= table.cursor_row < len(rows):
        return rows[table.cursor_row]
    return None


class LiveScreen(Screen[None]):
    """Subclasses set TITLE, compose their body in `compose_body`, and implement `fetch`/`show`."""

    TITLE: ClassVar[str] = ""
    refresh_s: ClassVar[float] = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0  # completed loads (tests wait on it)
        self._loading = False
        self._failures = 0
        self._wait_s = 0.0
        self._reload_asked = False

    @property
    def deck(self) -> CreatordeckApp:
        return cast("CreatordeckApp", self.app)

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.TITLE)
        yield from self.compose_body()
        yield Static("loading…", id="status-line")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    async def fetch(self) -> Any:
        """Load the screen's data (in a worker). Raise to report a failure."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Put freshly loaded data on screen (on the UI thread, after `fetch`)."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.set_interval(TICK_S, self._tick)
        self._start_load()

    def on_screen_resume(self) -> None:
        # Back on top (a modal closed, or `:` jumped here): show fresh data at once.
        self.request_reload()

    async def run_edit(
        self,
        write: Awaitable[Result],
        *,
        failed: str,
        done: Callable[[Result], str],
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        """The one path of an edit once it is asked for: write, say in one line what happened,
        load again. An `expected` error is the user's to act on and shows as its message; any
        other shows its type too, so a bug is not mistaken for a refusal."""
        try:
            result = await write
        except expected as exc:
            self.notify(f"{failed}: {exc}", severity="error")
        except Exception as exc:
            self.notify(f"{failed}: {type(exc).__name__}: {exc}", severity="error")
        else:
            self.notify(done(result))
        self.request_reload()

    def request_reload(self) -> None:
        """Load again as soon as possible (after an edit); never starts a second load."""
        self._reload_asked = True
        self._wait_s = 0.0
        self._tick()

    def _tick(self) -> None:
        if self._loading or self.app.screen is not self:
            return
        self._wait_s -= TICK_S
        if self._wait_s <= 0 or self._reload_asked:
            self._start_load()

    def _start_load(self) -> None:
        self._loading = True
        self._reload_asked = False
        self._load()

    @work(group="live-load", exit_on_error=False)
    async def _load(self) -> None:
        try:
            data = await self.fetch()
        except Exception as exc:  # the database or Redis is away: keep the last data, back off
            self._failures += 1
            self._wait_s = min(self.refresh_s * 2**self._failures, MAX_BACKOFF_S)
            self.set_status(
                f"[b red]refresh failed[/] ({type(exc).__name__}: {escape(str(exc))[:200]}) — "
                f"showing the last data, retrying in {self._wait_s:.0f}s"
            )
        else:
            self._failures = 0
            self._wait_s = self.refresh_s
            self.show(data)
            self.loads += 1
        finally:
            self._loading = False

    def set_status(self, markup: str) -> None:
        self.query_one("#status-line", Static).update(markup)
