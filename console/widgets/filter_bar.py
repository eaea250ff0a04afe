"""The `/` filter line of a table screen: hidden until asked for, filters as you type.

`Changed` comes with every keystroke (for filters in memory); `Settled` once typing pauses for
SETTLE_S (for filters that query the database: one read per pause, not per key).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input

SETTLE_S = 0.3


class FilterBar(Input):
    """A one-line input docked at the bottom. `enter` keeps the filter, `esc` clears it."""

    DEFAULT_CSS = """
    FilterBar {
        display: none;
    }
    FilterBar.-shown {
        display: block;
    }
    """

    # Shown: while the bar has the focus the footer says how to leave it (the screen's own
    # keys, `q quit` among them, type into the bar until then).
    BINDINGS = [
        Binding("enter", "keep", "keep filter", id="filter.keep"),
        Binding("escape", "clear", "clear filter", key_display="esc", id="filter.clear"),
    ]

    class Settled(Message):
        """The filter text has not changed for SETTLE_S."""

    def __init__(self, placeholder: str = "filter…", **kwargs: object) -> None:
        super().__init__(placeholder=placeholder, compact=True, id="filter", **kwargs)  # type: ignore[arg-type]
        self._settle: Timer | None = None

    def on_input_changed(self, _event: Input.Changed) -> None:
        if self._settle is not None:
            self._settle.stop()
        self._settle = self.set_timer(SETTLE_S, lambda: self.post_message(self.Settled()))

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def action_clear(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self._back_to_table()

    def action_keep(self) -> None:
        if not self.value:
            self.remove_class("-shown")
        self._back_to_table()

    def _back_to_table(self) -> None:
        for table in self.screen.query("DataTable, VirtualTable"):
            if table.display:  # a screen may hold two, one of them hidden (posts: list, week)
                table.focus()
                return
