"""A modal whose inputs are checked as you type: the one shape of the console's edit dialogs.

The preview line (`#preview`) says what will be saved, or, in red, why it cannot be; ctrl+s (and
enter, see `ENTER_MOVES_ON`) dismisses with the checked value only; esc dismisses with None.

A subclass says what is wrong (`check`: the problem as a string, or None), what the inputs make
once they pass (`result`), and how to show it (`describe`; "ok" by default). The problem is a
string and the value is built apart from it, so a value may itself be a string (a team's name).

A form whose fields are plain inputs lists them in `FIELDS` (with `HEADING`, and `choices` under
them) and takes the compose here; a dialog with its own layout composes it, with an
`Input` per field and a `Static(id="preview")`.

Invariant: the modal never dismisses with a value whose inputs did not pass `check` at that
moment (save checks again: a clock or a list may have moved). Cost: `check` runs on every
keystroke, so it reads only what the modal already holds (no I/O).
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

T = TypeVar("T")

HINT = "[b]enter[/] save   [b]tab[/] next field   [b]esc[/] cancel"


class CheckedModal(ModalScreen[T | None], Generic[T]):
    DEFAULT_CSS = """
    CheckedModal .choices { margin-top: 1; height: auto; max-height: 8; color: $text-muted; }
    """
    FIRST_INPUT: ClassVar[str | None] = None  # the id of the input focused first; None: the first
    REFUSED: ClassVar[str] = "cannot save"  # the preview's word for inputs that do not pass
    NOT_DONE: ClassVar[str] = "not saved"  # the notice's, when enter is pressed anyway
    # A form's enter on a field other than the last moves to the next one (typing a name, then
    # enter, should not save a form with its role still blank); a dialog's enter saves at once.
    ENTER_MOVES_ON: ClassVar[bool] = False
    HEADING: str = ""
    FIELDS: ClassVar[tuple[tuple[str, str, str], ...]] = ()  # id, label, placeholder

    def __init__(self, values: dict[str, str] | None = None, choices: str = "") -> None:
        super().__init__()
        self.initial = values or {}
        self.choices = choices
        self.problem: str | None = "not checked"

    def check(self) -> str | None:
        """Why the inputs make no value now, or None when they do."""
        raise NotImplementedError

    def result(self) -> T:
        """The value the inputs make; called only after `check` passed."""
        raise NotImplementedError

    def describe(self) -> str:
        """The preview of inputs that passed (Rich markup; escape what the user typed)."""
        return "[green]ok[/]"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id=f"{self.dialog_id}-dialog"):
            yield Label(f"[b]{escape(self.HEADING)}[/]")
            for field, label, placeholder in self.FIELDS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    value = self.initial.get(field, "")
                    yield Input(value, placeholder=placeholder, id=field, compact=True)
            if self.choices:
                yield Static(self.choices, classes="choices", markup=False)
            yield Static(id="preview")
            yield Label(HINT, classes="hint")

    @property
    def dialog_id(self) -> str:
        return type(self).__name__.removesuffix("Modal").lower()

    def value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def on_mount(self) -> None:
        self.validate_input()
        first = self.FIRST_INPUT
        (self.query_one(f"#{first}", Input) if first else self.query(Input).first()).focus()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate_input()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.ENTER_MOVES_ON and event.input is not self.query(Input).last():
            self.focus_next()
            return
        self.action_save()

    def validate_input(self) -> None:
        self.problem = self.check()
        preview = self.query_one("#preview", Static)
        preview.set_class(self.problem is not None, "-invalid")
        if self.problem is not None:
            preview.update(f"[b red]{self.REFUSED}:[/] {escape(self.problem)}")
            return
        preview.update(self.describe())

    def action_save(self) -> None:
        self.validate_input()
        if self.problem is not None:
            self.notify(f"{self.NOT_DONE}: {self.problem}", severity="error")
            return
        self.dismiss(self.result())

    def action_cancel(self) -> None:
        self.dismiss(None)
