"""`?`: every key of the screen underneath, then the global ones.

Keys and their descriptions are a grid (a key column, then the description wrapping under
itself), never markup: a key such as `[` is shown as typed. The keys scroll inside the dialog
while the title and `esc close` stay, so at 80x24 nothing is cut."""

from __future__ import annotations

from collections.abc import Iterable

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

NAVIGATION = "↑/↓ pgup/pgdn home/end move · tab next field/widget · enter select"


def describe(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        keys = binding.key_display or ", ".join(
            "space" if key == "space" else key for key in binding.key.split(",")
        )
        rows.append((keys, binding.tooltip or binding.description))
    return rows


class HelpModal(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpModal #help-keys { height: auto; max-height: 60vh; }
    """
    BINDINGS = [
        Binding("escape", "close", "close", id="help.close"),
        Binding("question_mark", "close", "close", id="help.close"),
        Binding("q", "close", "close", id="help.close"),
    ]

    def __init__(
        self, title: str, screen_keys: list[tuple[str, str]], global_keys: list[tuple[str, str]]
    ) -> None:
        super().__init__()
        self.title_text = title
        self.screen_keys = screen_keys
        self.global_keys = global_keys

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Label(f"[b]Keys: {escape(self.title_text)}[/]")
            with VerticalScroll(id="help-keys"):
                yield Static(self._table(self.screen_keys), id="help-screen-keys")
                yield Label("[b]Everywhere[/]")
                yield Static(self._table(self.global_keys), id="help-global-keys")
                yield Static(f"[dim]{escape(NAVIGATION)}[/]")
            yield Label("[b]esc[/] close", classes="hint")

    @staticmethod
    def _table(rows: list[tuple[str, str]]) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)  # the indent under the section's title
        grid.add_column(style="bold", no_wrap=True, min_width=8)
        grid.add_column(ratio=1)
        for key, text in rows:  # Text, not str: a cell's str is markup ("[posts.compose]")
            grid.add_row("", Text(key), Text(text))
        return grid

    def action_close(self) -> None:
        self.dismiss(None)
