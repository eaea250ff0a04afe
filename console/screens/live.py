"""The base of every data screen: a header, a body, a status line, and a refresh loop.

The loop: a load runs in a Textual worker, never two at once, only while the screen is the one
on top (nothing refreshes behind a modal or on a screen in the background), every
`refresh_s` seconds; on error the status line says what failed, the last data stays on
screen, and the next try waits twice as long (up to `MAX_BACKOFF_S`; console.widgets.backoff,
shared with the header).

Edits: every edit worker ends in `run_edit`, which catches one user-facing error type
(storage.user_error.UserError), reports a store that is away as such, and logs anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Static

from console.data.common import KNOWN_ERRORS, STORE_ERRORS
from console.screens.dialogs import ConfirmModal
from console.user_error import UserError
from console.widgets.backoff import Backoff
from console.widgets.deck_footer import DeckFooter
from console.widgets.status_header import StatusHeader

if TYPE_CHECKING:
    from console.deck import Deck

log = logging.getLogger(__name__)

TICK_S = 0.25


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
        self.backoff = Backoff(self.refresh_s)
        self._reload_asked = False

    @property
    def deck(self) -> Deck:
        return cast("Deck", self.app)

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.TITLE)
        yield from self.compose_body()
        yield Static("loading…", id="status-line")
        yield DeckFooter()

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

    def confirm(self, question: str, then: Callable[[], object]) -> None:
        """Ask `question` (yes / no, Rich markup); run `then` only on yes."""

        def answer(yes: bool | None) -> None:
            if yes:
                then()

        self.app.push_screen(ConfirmModal(question), answer)

    async def run_edit(
        self,
        write: Awaitable[Result],
        *,
        failed: str,
        done: Callable[[Result], str],
    ) -> None:
        """The one path of an edit once it is asked for: write (the read model validates and
        writes with its audit row), say in one line what happened, load again.

        A `UserError` is the user's to act on and shows as its message; a store that is away
        says so; anything else is a bug: logged with its traceback and shown with its type, so
        it is not mistaken for a refusal. This is the edit workers' last-resort boundary."""
        try:
            result = await write
        except UserError as exc:
            self.notify(f"{failed}: {exc}", title=exc.title, severity="error")
        except STORE_ERRORS as exc:
            self.notify(f"{failed}: store unreachable ({describe(exc)})", severity="error")
        except Exception as exc:  # last resort: a bug must not kill the console
            log.exception("edit failed: %s", failed)
            self.notify(f"{failed}: unexpected error ({describe(exc)})", severity="error")
        else:
            self.notify(done(result))
        self.request_reload()

    def request_reload(self) -> None:
        """Load again as soon as possible (after an edit); never starts a second load."""
        self._reload_asked = True
        self.backoff.now()
        self._tick()

    def _tick(self) -> None:
        if self._loading or self.app.screen is not self:
            return
        if self.backoff.tick(TICK_S) or self._reload_asked:
            self._start_load()

    def _start_load(self) -> None:
        self._loading = True
        self._reload_asked = False
        self._load()

    @work(group="live-load", exit_on_error=False)
    async def _load(self) -> None:
        try:
            data = await self.fetch()
        except Exception as exc:  # the load worker's boundary: keep the last data, back off
            if not isinstance(exc, KNOWN_ERRORS):
                log.exception("%s: load failed", self.TITLE)
            wait_s = self.backoff.failed()
            self.set_status(
                f"[b red]refresh failed[/] ({escape(describe(exc))}) — "
                f"showing the last data, retrying in {wait_s:.0f}s"
            )
        else:
            self.backoff.succeeded()
            self.show(data)
            self.loads += 1
        finally:
            self._loading = False

    def set_status(self, markup: str) -> None:
        self.query_one("#status-line", Static).update(markup)


def describe(exc: BaseException) -> str:
    """`Type: message` in one line of at most 200 characters, for a status line or notice."""
    return f"{type(exc).__name__}: {exc}"[:200]
