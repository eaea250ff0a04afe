"""The backfill modal of the Regions screen: a range of past fire times, checked as you type.

It dismisses with the range only when the check passes (at most 1,000 fire times, past only);
the screen writes it in a worker, through console.data.backfill.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from console.data.backfill import BackfillPlan, plan
from console.screens.checked_modal import CheckedModal
from console.widgets.formatting import when


class BackfillModal(CheckedModal[BackfillPlan]):
    """Backfill a region between two UTC datetimes; previews the count, first and last."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="backfill.cancel"),
        Binding("ctrl+s", "save", "backfill", id="backfill.save"),
    ]
    FIRST_INPUT = "from"
    REFUSED, NOT_DONE = "cannot queue", "not queued"

    def __init__(self, code: str, cron: str, timezone: str, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.code, self.cron, self.timezone, self.now = code, cron, timezone, now
        self.planned: BackfillPlan | None = None  # the last range that passed `check`

    def compose(self) -> ComposeResult:
        end = self.now().replace(second=0, microsecond=0)
        start = end - timedelta(days=1)  # a day: a daily schedule fires once in it
        with Vertical(classes="dialog", id="backfill-dialog"):
            yield Label(f"[b]Backfill {escape(self.code)}[/] ({escape(self.cron)})")
            with Horizontal(classes="field"):
                yield Label("from", classes="field-label")
                yield Input(f"{start:%Y-%m-%d %H:%M}", id="from", compact=True)
            with Horizontal(classes="field"):
                yield Label("to", classes="field-label")
                yield Input(f"{end:%Y-%m-%d %H:%M}", id="to", compact=True)
            yield Static(id="preview")
            yield Label(
                "UTC · [b]enter[/] queue   [b]tab[/] next field   [b]esc[/] cancel",
                classes="hint",
            )

    def check(self) -> str | None:
        start = self.query_one("#from", Input).value
        end = self.query_one("#to", Input).value
        outcome = plan(self.cron, self.timezone, start, end, self.now())
        if isinstance(outcome, str):
            return outcome
        self.planned = outcome
        return None

    def result(self) -> BackfillPlan:
        assert self.planned is not None  # result follows a check that passed
        return self.planned

    def describe(self) -> str:
        fires = self.result().fires
        span = (
            f"1 fire time: {when(fires[0])}"
            if len(fires) == 1
            else f"{len(fires):,} fire times: {when(fires[0])} … {when(fires[-1])}"
        )
        return f"{span}\nthose already in the ledger are skipped"
