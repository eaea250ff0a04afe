"""A modal whose inputs are checked as you type: the one shape of the console's edit dialogs.

The preview line (`#preview`) says what will be saved, or, in red, why it cannot be; enter or
ctrl+s dismisses with the checked value only; esc dismisses with None. A subclass says how to
check (`check`: the value, or the reason as a string), how to show a good value (`describe`),
and which input has the focus first (`FIRST_INPUT`). Invariant: the modal never dismisses with a
value that did not pass `check` at that moment (save checks again: a clock may have moved).
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from rich.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Input, Static

T = TypeVar("T")


class CheckedModal(ModalScreen[T | None], Generic[T]):
    FIRST_INPUT: ClassVar[str]  # the id of the input focused first
    REFUSED: ClassVar[str] = "cannot save"  # the preview's word for a value that does not pass
    NOT_DONE: ClassVar[str] = "not saved"  # the notice's, when enter is pressed anyway

    def __init__(self) -> None:
        super().__init__()
        self.result: T | str = "not checked"

    def check(self) -> T | str:
        """The value the inputs make now, or why they make none."""
        raise NotImplementedError

    def describe(self, value: T) -> str:
        """The preview of a value that passed (Rich markup; escape what the user typed)."""
        raise NotImplementedError

    def on_mount(self) -> None:
        self.validate_input()
        self.query_one(f"#{self.FIRST_INPUT}", Input).focus()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate_input()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_save()

    def validate_input(self) -> None:
        self.result = self.check()
        preview = self.query_one("#preview", Static)
        if isinstance(self.result, str):
            preview.update(f"[b red]{self.REFUSED}:[/] {escape(self.result)}")
            preview.set_class(True, "-invalid")
            return
        preview.set_class(False, "-invalid")
        preview.update(self.describe(self.result))

    def action_save(self) -> None:
        self.validate_input()
        if isinstance(self.result, str):
            self.notify(f"{self.NOT_DONE}: {self.result}", severity="error")
            return
        self.dismiss(self.result)

    def action_cancel(self) -> None:
        self.dismiss(None)
