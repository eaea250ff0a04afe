"""The `/` filter line of a table screen: hidden until asked for, filters as you type."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


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

    BINDINGS = [
        Binding("escape", "clear", "clear filter", show=False, id="filter.clear"),
        Binding("enter", "keep", "keep filter", show=False, id="filter.keep"),
    ]

    def __init__(self, placeholder: str = "filter…", **kwargs: object) -> None:
        super().__init__(placeholder=placeholder, compact=True, id="filter", **kwargs)  # type: ignore[arg-type]

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
