"""CheckedModal: a problem or None from `check`, the value from `result`, so a value may be a
string; enter saves only a value that passes, and a form's enter moves on until its last field."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App
from textual.widgets import Static

from console.screens.checked_modal import CheckedModal


class NameModal(CheckedModal[str]):
    HEADING = "Name"
    ENTER_MOVES_ON = True
    FIELDS: ClassVar = (("first", "first", ""), ("name", "name", "not 'bad'"))

    def check(self) -> str | None:
        return "name: not bad" if self.value("name") == "bad" else None

    def result(self) -> str:
        return self.value("name")


class Host(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.results: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(NameModal(), self.results.append)


async def test_a_string_value_is_saved_and_a_refused_one_is_not() -> None:
    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, NameModal)
        await pilot.press("enter")  # on the first field: moves to the last, saves nothing
        assert app.screen is modal and app.results == []
        await pilot.press("b", "a", "d", "enter")
        preview = str(modal.query_one("#preview", Static).render())
        assert preview == "cannot save: name: not bad"
        assert app.screen is modal and app.results == []  # refused: the modal stays
        await pilot.press("backspace", "backspace", "backspace", "enter")
        await pilot.pause()
    assert app.results == [""]  # an empty string is a value, not "why not"
