"""The Timeline's offset modal: move some regions of a crowded minute by +N minutes.

It previews each rewritten cron as you type and dismisses only with changes that passed the
read model's checks (console.data.timeline.plan_offset); the write checks the crons again.
"""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from console.data.timeline import (
    MAX_OFFSET_REGIONS,
    Minute,
    OffsetChange,
    OffsetError,
    Timeline,
    plan_offset,
)
from console.screens.checked_modal import CheckedModal
from console.widgets.formatting import count

PREVIEW_LINES = 5


class OffsetModal(CheckedModal[list[OffsetChange]]):
    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="offset.cancel"),
        Binding("ctrl+s", "save", "save", id="offset.save"),
    ]
    FIRST_INPUT = "count"

    def __init__(self, minute: Minute, timeline: Timeline) -> None:
        super().__init__()
        self.minute, self.timeline = minute, timeline
        self.changes: list[OffsetChange] = []  # the last changes that passed `check`

    def compose(self) -> ComposeResult:
        total = len(self.minute.regions)
        with Vertical(classes="dialog", id="offset-dialog"):
            yield Label(f"[b]Spread {self.minute.at:%H:%M} UTC[/] ({count(total, 'region')})")
            with Horizontal(classes="field"):
                yield Label("move", classes="field-label")
                yield Input(
                    str(max(1, min(total // 2, MAX_OFFSET_REGIONS))), id="count", compact=True
                )
            with Horizontal(classes="field"):
                yield Label("by +min", classes="field-label")
                yield Input("5", id="offset", compact=True)
            yield Static(id="preview")
            yield Label(
                "the last regions by code move · [b]enter[/] save   [b]esc[/] cancel",
                classes="hint",
            )

    def check(self) -> str | None:
        count_text = self.query_one("#count", Input).value.strip()
        offset_text = self.query_one("#offset", Input).value.strip()
        total = len(self.minute.regions)
        if not count_text.isdigit() or not 1 <= int(count_text) <= total:
            return f"move: a number of regions from 1 to {total:,}"
        if not offset_text.isdigit():
            return "by: a number of minutes from 1 to 59"
        codes = self.minute.regions[total - int(count_text) :]
        try:
            self.changes = plan_offset(self.timeline, codes, int(offset_text))
        except OffsetError as exc:
            return str(exc)
        return None

    def result(self) -> list[OffsetChange]:
        return self.changes

    def describe(self) -> str:
        value = self.changes
        lines = [
            f"{escape(c.code)}: {escape(self.timeline.schedules[c.code][0])} → {escape(c.cron)}"
            for c in value[:PREVIEW_LINES]
        ]
        if len(value) > PREVIEW_LINES:
            lines.append(f"… and {len(value) - PREVIEW_LINES:,} more")
        return "\n".join(lines)
