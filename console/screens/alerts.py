"""Alerts: every condition of `engine.alerts.conditions`, judged from Postgres and Redis.

One row per condition: its state (ok, pending, firing, unknown), since when, severity, value
and what the facts say; under the table the selected condition's summary and runbook line.
`s` silences the selected condition for a while (asks how long and why; the silence and an
audit row are written in one transaction), `u` ends its silence. Works without Prometheus.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from console.data import alerts as data_alerts
from console.data.alerts import AlertsView, SilenceError
from console.data.common import current_actor
from console.screens.live import LiveScreen, row_at_cursor
from console.widgets.formatting import count, when
from engine.alerts.conditions import summary_of
from engine.alerts.evaluate import AlertStatus, State

STATE_STYLES = {
    State.OK: "green",
    State.PENDING: "bold yellow",
    State.FIRING: "bold red",
    State.UNKNOWN: "dim",
}

COLUMNS = (  # label, key, width; "Now" (width 0) takes what the others leave
    ("State", "state", 8),
    ("Alert", "alert", 21),
    ("Sev", "severity", 6),
    ("Since", "since", 11),
    ("Now", "detail", 0),
)
# Below this width "Sev" gives way (the line under the table names the severity) and "Now"
# keeps at least NOW_MIN cells; its rows wrap rather than cut what the facts say.
SEV_MIN_WIDTH = 100
NOW_MIN = 20
CELL_PADDING = 2  # DataTable's one cell either side of each column
SCROLLBAR = 2
# What an empty detail means: the condition's facts hold nothing to report.
QUIET = {
    "RegionFireTimeMissed": "no fire time missed",
    "BreakerOpenLong": "every breaker closed",
}


def columns_for(width: int) -> list[tuple[str, str, int]]:
    """The columns that fit `width` cells, "Now" sized to the rest."""
    shown = [c for c in COLUMNS if width >= SEV_MIN_WIDTH or c[1] != "severity"]
    fixed = sum(w + CELL_PADDING for _, _, w in shown if w) + CELL_PADDING + SCROLLBAR
    return [(label, key, w or max(width - fixed, NOW_MIN)) for label, key, w in shown]


def _value(status: AlertStatus) -> str:
    # Only ratios lead the detail: for "s" conditions the detail already says it in words
    # (p99 0.2 s, running since …), and a rounded age shows as "-0s" or "0s" beside it.
    value, unit = status.value, status.condition.unit
    if value is None or unit != "ratio":
        return ""
    return f"{value:.0%} "


def detail_cell(status: AlertStatus) -> Text:
    detail = status.detail or QUIET.get(status.condition.name, "nothing to report")
    return Text(f"{_value(status)}{detail}")


def state_cell(status: AlertStatus) -> Text:
    if status.silenced and status.state != State.OK:
        return Text(f"{status.state.value}~", style="dim")
    return Text(status.state.value, style=STATE_STYLES[status.state])


def status_cells(status: AlertStatus, keys: list[str]) -> tuple[Text | str, ...]:
    cells: dict[str, Text | str] = {
        "state": state_cell(status),
        "alert": status.condition.name,
        "severity": status.condition.severity.value,
        "since": when(status.since),
        "detail": detail_cell(status),
    }
    return tuple(cells[key] for key in keys)


class SilenceModal(ModalScreen[tuple[str, str] | None]):
    """How long and why: validated as you type; enter saves, esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="silence.cancel")]

    def __init__(self, condition: str) -> None:
        super().__init__()
        self.condition = condition
        # A field's error shows once it was edited, or once enter tried to save: not before.
        self.initial: dict[str | None, str] = {"duration": "1h", "reason": ""}
        self.edited: set[str | None] = set()
        self.submitted = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Silence [b]{escape(self.condition)}[/]")
            yield Input(
                self.initial["duration"], placeholder="for: 30m, 2h, 1d (at most 7d)", id="duration"
            )
            yield Input("", placeholder="why (kept in the audit log)", id="reason")
            yield Static(id="silence-error")
            yield Label("[b]enter[/] next/save  [b]esc[/] cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.value != self.initial.get(event.input.id):
            self.edited.add(event.input.id)
        self.check()

    def check(self) -> tuple[str, str] | None:
        duration = self.query_one("#duration", Input).value
        reason = self.query_one("#reason", Input).value
        out = self.query_one("#silence-error", Static)
        errors: list[tuple[str, SilenceError]] = []
        try:
            data_alerts.parse_duration(duration)
        except SilenceError as exc:
            errors.append(("duration", exc))
        try:
            data_alerts.check_reason(reason)
        except SilenceError as exc:
            errors.append(("reason", exc))
        shown = [exc for field, exc in errors if self.submitted or field in self.edited]
        if shown:
            out.update(f"[b red]cannot save:[/] {escape(str(shown[0]))}")
        else:
            out.update("" if errors else "[green]ok[/]")
        return None if errors else (duration, reason)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "duration":
            self.query_one("#reason", Input).focus()
            return
        self.submitted = True
        answer = self.check()
        if answer is None:
            self.notify("not saved: see the reason in the dialog", severity="error")
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AlertsScreen(LiveScreen):
    TITLE = "Alerts"
    refresh_s = 5.0

    DEFAULT_CSS = """
    #alerts { height: 1fr; }
    #alert-runbook { height: auto; max-height: 5; padding: 0 1; }
    """

    BINDINGS: ClassVar = [
        Binding(
            "s",
            "silence",
            "silence",
            tooltip="silence the selected alert for a while (audited)",
            id="alerts.silence",
        ),
        Binding(
            "u",
            "unsilence",
            "unsilence",
            tooltip="end the selected alert's silence (audited)",
            id="alerts.unsilence",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: AlertsView | None = None
        self.statuses: tuple[AlertStatus, ...] = ()
        self.columns: list[tuple[str, str, int]] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="alerts", cursor_type="row")
        yield Static(" ", id="alert-runbook")

    def on_resize(self) -> None:
        if self._fit_columns() and self.view is not None:
            self.show(self.view)

    def _fit_columns(self) -> bool:
        """Columns for the screen's width; True when they changed (the rows must be added again)."""
        columns = columns_for(self.size.width)
        if columns == self.columns:
            return False
        self.columns = columns
        table = self.table
        table.clear(columns=True)
        for label, key, width in columns:
            table.add_column(label, key=key, width=width)
        return True

    async def fetch(self) -> AlertsView:
        return await data_alerts.monitor_for(self.deck).current(force=True)

    def show(self, view: AlertsView) -> None:
        self.view = view
        self.statuses = view.statuses
        if not self.columns:
            self._fit_columns()
        table = self.table
        row = table.cursor_row
        table.clear()
        keys = [key for _, key, _ in self.columns]
        for status in view.statuses:
            # height None: a long detail wraps in "Now" rather than being cut.
            table.add_row(*status_cells(status, keys), key=status.condition.name, height=None)
        if view.statuses:
            table.move_cursor(row=min(max(row, 0), len(view.statuses) - 1))
        firing = view.count(State.FIRING)
        pending = view.count(State.PENDING)
        note = f" · silences unreadable: {escape(view.silence_error)}" if view.silence_error else ""
        # The keys are in the footer: the line keeps to one row at 80 columns.
        self.set_status(
            f"{firing} firing, {pending} pending, {view.silenced} silenced · evaluated "
            f"{view.evaluated_at:%H:%M:%S}{note}"
        )
        self._show_runbook()

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#alerts", DataTable)

    def status_of(self, name: str) -> AlertStatus | None:
        return next((s for s in self.statuses if s.condition.name == name), None)

    def selected(self) -> AlertStatus | None:
        return row_at_cursor(self.table, self.statuses)

    @on(DataTable.RowHighlighted)
    def _show_runbook(self) -> None:
        status = self.selected()
        out = self.query_one("#alert-runbook", Static)
        if status is None:
            out.update(" ")
            return
        condition = status.condition
        silenced = ""
        if status.silence is not None:
            silenced = (
                f"\n[dim]silenced until {when(status.silence.until)} by "
                f"{escape(status.silence.actor)}: {escape(status.silence.reason)}[/]"
            )
        out.update(
            f"[b]{condition.name}[/] ({condition.severity.value}, for {condition.for_s}s): "
            f"{escape(summary_of(condition))}\n[b]runbook[/] {escape(condition.runbook)}"
            f"{silenced}"
        )

    def action_silence(self) -> None:
        if self.deck.refuse_read_only("silence an alert"):
            return
        status = self.selected()
        if status is None:
            return
        name = status.condition.name

        def answer(result: tuple[str, str] | None) -> None:
            if result is not None:
                self._silence(name, *result)

        self.app.push_screen(SilenceModal(name), answer)

    def action_unsilence(self) -> None:
        if self.deck.refuse_read_only("unsilence an alert"):
            return
        status = self.selected()
        if status is not None:
            self._unsilence(status.condition.name)

    @work(group="edit", exit_on_error=False)
    async def _silence(self, name: str, duration: str, reason: str) -> None:
        async def write() -> datetime:
            length = data_alerts.parse_duration(duration)  # a SilenceError is a UserError
            return await data_alerts.silence(self.deck, name, length, reason, current_actor())

        await self.run_edit(
            write(),
            failed="not silenced",
            done=lambda until: f"{name} silenced until {when(until)}",
        )

    @work(group="edit", exit_on_error=False)
    async def _unsilence(self, name: str) -> None:
        await self.run_edit(
            data_alerts.unsilence(self.deck, name, current_actor()),
            failed="not unsilenced",
            done=lambda ended: (
                f"{name}: {count(ended, 'silence')} ended" if ended else f"{name} was not silenced"
            ),
        )
