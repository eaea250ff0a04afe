"""Modals of the Regions screen: confirm, edit a schedule, new region. Keyboard only.

Each modal validates as you type and dismisses with the values to write (or None); the screen
that opened it does the writing in a worker, through storage.queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from console.data.common import checked_schedule
from console.data.regions import RegionInput
from console.widgets.formatting import when

PREVIEW_RUNS = 10


class ConfirmModal(ModalScreen[bool]):
    """A yes/no question: `y` confirms, `n` or `esc` declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes", id="confirm.yes"),
        Binding("n", "answer(False)", "no", id="confirm.no"),
        Binding("escape", "answer(False)", "cancel", id="confirm.cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, id="question")
            yield Label("[b]y[/] yes   [b]n[/]/[b]esc[/] no", classes="hint")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    cron: str
    timezone: str


class CronEditModal(ModalScreen[ScheduleChange | None]):
    """Edit a region's cron and timezone; previews the next 10 runs; refuses invalid input."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="cron_edit.cancel"),
        Binding("ctrl+s", "save", "save", id="cron_edit.save"),
    ]

    # The preview moves on with the clock while the modal stays open.
    PREVIEW_REFRESH_S = 5.0

    def __init__(self, code: str, cron: str, timezone: str, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.code = code
        self.start_cron = cron
        self.start_timezone = timezone
        self.now = now
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="cron-dialog"):
            yield Label(f"[b]Schedule of {escape(self.code)}[/]")
            with Horizontal(classes="field"):
                yield Label("cron", classes="field-label")
                yield Input(self.start_cron, placeholder="m h dom mon dow", id="cron", compact=True)
            with Horizontal(classes="field"):
                yield Label("timezone", classes="field-label")
                yield Input(
                    self.start_timezone, placeholder="e.g. UTC", id="timezone", compact=True
                )
            yield Static(id="preview")
            yield Label(
                "[b]enter[/]/[b]ctrl+s[/] save   [b]tab[/] next field   [b]esc[/] cancel",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.validate_input()
        self.query_one("#cron", Input).focus()
        self.set_interval(self.PREVIEW_REFRESH_S, self.validate_input)

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate_input()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.action_save()

    def values(self) -> ScheduleChange:
        cron = " ".join(self.query_one("#cron", Input).value.split())
        timezone = self.query_one("#timezone", Input).value.strip()
        return ScheduleChange(cron, timezone)

    def validate_input(self) -> None:
        change = self.values()
        preview = self.query_one("#preview", Static)
        schedule = checked_schedule(change.cron, change.timezone)
        if isinstance(schedule, str):
            self.error = schedule
            preview.update(f"[b red]cannot save:[/] {escape(self.error)}")
            preview.set_class(True, "-invalid")
            return
        self.error = None
        fires = schedule.next_fires(self.now(), PREVIEW_RUNS)
        preview.set_class(False, "-invalid")
        lines = [f"next {PREVIEW_RUNS} runs (UTC):"]
        lines += [f"  {when(fire)}" for fire in fires]
        preview.update("\n".join(lines))

    def action_save(self) -> None:
        self.validate_input()
        if self.error is not None:
            self.notify(f"not saved: {self.error}", severity="error")
            return
        change = self.values()
        if change == ScheduleChange(self.start_cron, self.start_timezone):
            self.dismiss(None)
            return
        self.dismiss(change)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _pydantic_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "input"
    message = str(first["msg"]).removeprefix("Value error, ")
    if field == "code" and first["type"] == "string_pattern_mismatch":
        message = "use capitals, digits and _ (2-64 chars, starting with a letter)"
    return f"{field}: {message}"


class RegionFormModal(ModalScreen[RegionInput | None]):
    """A new region: code, name, cron, timezone; validated with RegionInput as you type."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel", id="region_form.cancel"),
        Binding("ctrl+s", "save", "save", id="region_form.save"),
    ]

    FIELDS = (
        ("code", "code, e.g. DETROIT_METRO"),
        ("name", "name, e.g. Detroit Metro"),
        ("cron", "cron: m h dom mon dow"),
        ("timezone", "timezone, e.g. UTC"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.error: str | None = "code: required"

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="region-dialog"):
            yield Label("[b]New region[/]")
            for field, placeholder in self.FIELDS:
                value = "UTC" if field == "timezone" else ""
                with Horizontal(classes="field"):
                    yield Label(field, classes="field-label")
                    yield Input(value, placeholder=placeholder, id=field, compact=True)
            yield Static(id="form-error")
            yield Label(
                "[b]enter[/] next/save  [b]ctrl+s[/] save  [b]tab[/] next  [b]esc[/] cancel",
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one("#code", Input).focus()
        self.validate_input()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate_input()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "timezone":
            self.action_save()
        else:
            self.focus_next()

    def build(self) -> RegionInput:
        raw = {field: self.query_one(f"#{field}", Input).value.strip() for field, _ in self.FIELDS}
        return RegionInput(**raw)

    def validate_input(self) -> RegionInput | None:
        out = self.query_one("#form-error", Static)
        try:
            region = self.build()
        except ValidationError as exc:
            self.error = _pydantic_reason(exc)
        else:
            checked = checked_schedule(region.cron, region.timezone)
            if not isinstance(checked, str):
                self.error = None
                out.update("[green]ok[/]")
                return region
            self.error = f"timezone: {checked}"
        out.update(f"[b red]cannot save:[/] {escape(self.error)}")
        return None

    def action_save(self) -> None:
        region = self.validate_input()
        if region is None:
            self.notify(f"not saved: {self.error}", severity="error")
            return
        self.dismiss(region)

    def action_cancel(self) -> None:
        self.dismiss(None)
