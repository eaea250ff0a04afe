"""`?`: every key of the screen underneath, then the global ones."""

from __future__ import annotations

from collections.abc import Iterable

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
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
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Label(f"[b]Keys: {escape(self.title_text)}[/]")
            yield Static(self._table(self.screen_keys), id="help-screen-keys")
            yield Label("[b]Everywhere[/]")
            yield Static(self._table(self.global_keys), id="help-global-keys")
            yield Label(f"[dim]{escape(NAVIGATION)}[/]")
            yield Label("[b]esc[/] close", classes="hint")

    @staticmethod
    def _table(rows: list[tuple[str, str]]) -> str:
        return "\n".join(f"  [b]{escape(key):<8}[/] {escape(text)}" for key, text in rows)

    def action_close(self) -> None:
        self.dismiss(None)
