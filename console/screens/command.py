"""`:` command mode, k9s style: type a screen name (tab completes), enter jumps there."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label


class CommandBar(ModalScreen[str | None]):
    """Dismisses with the command typed (`regions`, `runs DETROIT_METRO`, `q`), or None."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="command.cancel"),
        Binding("tab", "complete", "complete", show=False, priority=True, id="command.complete"),
    ]

    def __init__(self, commands: dict[str, str]) -> None:
        super().__init__()
        self.commands = commands  # name -> what it does

    def compose(self) -> ComposeResult:
        with Vertical(id="command-bar"):
            names = "  ".join(self.commands)
            yield Label(f"[dim]{names}[/]", id="command-names")
            yield Input(
                placeholder="screen name (tab completes, enter jumps, esc cancels)",
                suggester=SuggestFromList(list(self.commands), case_sensitive=False),
                id="command",
                compact=True,
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        word = event.value.strip().lower()
        matches = [name for name in self.commands if name.startswith(word)] if word else []
        shown = matches or list(self.commands)
        label = self.query_one("#command-names", Label)
        if word and not matches:
            label.update(f"[b red]no screen {word!r}[/]  [dim]{'  '.join(self.commands)}[/]")
        else:
            label.update(f"[dim]{'  '.join(shown)}[/]")

    def action_complete(self) -> None:
        field = self.query_one(Input)
        word = field.value.strip().lower()
        matches = [name for name in self.commands if name.startswith(word)]
        if len(matches) == 1:
            field.value = matches[0]
            field.cursor_position = len(field.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
