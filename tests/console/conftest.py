"""Console tests: cursors that do not blink.

A blinking cursor is a 0.5 s timer, so a snapshot would show it or not depending on when it was
taken, and a test that turns blinking off after the modal opened races the input's focus (the
focus shows the cursor, turning blinking off hides it). Here every Input and TextArea starts
with blinking off, before it mounts: its cursor then shows exactly while it has focus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import Input, TextArea


@pytest.fixture(autouse=True)
def steady_cursors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for widget in (Input, TextArea):
        mount = widget._on_mount

        def steady(self: Any, event: Any, mount: Any = mount) -> None:
            self.cursor_blink = False  # before the blink timer exists: it starts paused
            mount(self, event)

        monkeypatch.setattr(widget, "_on_mount", steady)
    yield
