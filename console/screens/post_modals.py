"""The Posts screen's dialogs: schedule (a wall time in a timezone, checked as you type),
compose, resolve an outcome-unknown publication, and a post's detail with every attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, SelectionList, Static, TextArea

from console.data import post_metrics
from console.data import publishing as data
from console.screens.checked_modal import CheckedModal
from console.widgets.formatting import millis, when

POST_STYLES = {
    "published": "green",
    "partial": "yellow",
    "failed": "bold red",
    "publishing": "bold yellow",
    "scheduled": "cyan",
    "cancelled": "dim",
    "draft": "dim",
}


def styled(status: str) -> Text:
    return Text(status, style=POST_STYLES.get(status, ""))


def _pydantic_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# --- modals --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhenChoice:
    at: datetime
    timezone: str


def check_when(text: str, timezone: str, now: datetime) -> WhenChoice | str:
    """A future, existing wall time in a known timezone, or why not."""
    try:
        data.zone(timezone)
        at = data.parse_local_time(text, timezone)
    except ValueError as exc:
        return str(exc)
    if at < now - timedelta(minutes=1):
        return f"{at:%Y-%m-%d %H:%M} UTC is in the past"
    return WhenChoice(at, timezone)


def describe_when(choice: WhenChoice, now: datetime) -> str:
    ahead = millis(int((choice.at - now).total_seconds() * 1000))
    local = choice.at.astimezone(ZoneInfo(choice.timezone))
    return f"= {local:%a %Y-%m-%d %H:%M %Z} = {choice.at:%Y-%m-%d %H:%M} UTC (in {ahead})"


class ScheduleModal(CheckedModal[WhenChoice]):
    """Schedule or reschedule: a wall time in a timezone, checked as you type."""

    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "cancel", id="post_schedule.cancel"),
        Binding("ctrl+s", "save", "save", id="post_schedule.save"),
    ]
    FIRST_INPUT = "when"

    def __init__(self, title: str, start: str, timezone: str, now: datetime) -> None:
        super().__init__()
        self.title_text = title
        self.start = start
        self.timezone = timezone
        self.now = now
        self.choice: WhenChoice | None = None  # the last wall time that passed `check`

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"[b]{escape(self.title_text)}[/]")
            with Horizontal(classes="field"):
                yield Label("when", classes="field-label")
                yield Input(self.start, placeholder="YYYY-MM-DD HH:MM", id="when", compact=True)
            with Horizontal(classes="field"):
                yield Label("timezone", classes="field-label")
                yield Input(self.timezone, placeholder="e.g. Europe/Paris", id="tz", compact=True)
            yield Static(id="preview")
            yield Label("[b]enter[/]/[b]ctrl+s[/] save   [b]esc[/] cancel", classes="hint")

    def check(self) -> str | None:
        text = self.query_one("#when", Input).value
        tz = self.query_one("#tz", Input).value.strip()
        outcome = check_when(text, tz, self.now)
        if isinstance(outcome, str):
            return outcome
        self.choice = outcome
        return None

    def result(self) -> WhenChoice:
        assert self.choice is not None  # result follows a check that passed
        return self.choice

    def describe(self) -> str:
        return describe_when(self.result(), self.now)


class ComposeModal(ModalScreen[data.PostInput | None]):
    """Write a post (multi-line), pick accounts (space), optionally schedule it."""

    BINDINGS: ClassVar = [
        Binding("escape", "cancel", "cancel", id="post_compose.cancel"),
        Binding("ctrl+s", "save", "save", id="post_compose.save"),
    ]

    def __init__(
        self, connections: tuple[data.ConnectionRow, ...], timezone: str, now: datetime
    ) -> None:
        super().__init__()
        self.connections = connections
        self.timezone = timezone
        self.now = now
        self.result: data.PostInput | str = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="compose-dialog"):
            yield Label("[b]New post[/]  (body: multi-line; [b]tab[/] moves on)")
            yield TextArea(id="body", soft_wrap=True, show_line_numbers=False)
            yield SelectionList[int](
                *((f"{c.platform}: {c.display_name} ({c.status})", c.id) for c in self.connections),
                id="accounts",
            )
            with Horizontal(classes="field"):
                yield Label("media", classes="field-label")
                yield Input(
                    placeholder="file paths or URLs, comma separated", id="media", compact=True
                )
            with Horizontal(classes="field"):
                yield Label("when", classes="field-label")
                yield Input(placeholder="YYYY-MM-DD HH:MM (empty: draft)", id="when", compact=True)
            with Horizontal(classes="field"):
                yield Label("timezone", classes="field-label")
                yield Input(self.timezone, id="tz", compact=True)
            yield Static(id="preview")
            yield Label(
                "[b]ctrl+s[/] save   [b]space[/] pick account   [b]esc[/] cancel", classes="hint"
            )

    def on_mount(self) -> None:
        self.validate_input()
        self.query_one("#body", TextArea).focus()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.validate_input()

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        self.validate_input()

    def on_selection_list_selected_changed(
        self, _event: SelectionList.SelectedChanged[int]
    ) -> None:
        self.validate_input()

    def validate_input(self) -> None:
        preview = self.query_one("#preview", Static)
        self.result = self._build()
        if isinstance(self.result, str):
            preview.update(f"[b red]cannot save:[/] {escape(self.result)}")
            preview.set_class(True, "-invalid")
            return
        preview.set_class(False, "-invalid")
        post = self.result
        text = f"{len(post.body)} characters to {len(post.connection_ids)} account(s)"
        if post.scheduled_at is None:
            text += " · saved as a draft"
        else:
            text += " · " + describe_when(WhenChoice(post.scheduled_at, post.timezone), self.now)
        preview.update(text)

    def _build(self) -> data.PostInput | str:
        body = self.query_one("#body", TextArea).text
        chosen = list(self.query_one("#accounts", SelectionList).selected)
        media = [m.strip() for m in self.query_one("#media", Input).value.split(",") if m.strip()]
        when_text = self.query_one("#when", Input).value.strip()
        tz = self.query_one("#tz", Input).value.strip()
        if not body.strip():
            return "the post is empty"
        if not chosen:
            return "pick at least one account (space)"
        platforms = [c.platform for c in self.connections if c.id in chosen]
        limit = data.body_limit(platforms)
        if limit is not None and len(body) > limit:
            return f"{len(body)} characters; the strictest account takes {limit}"
        scheduled: datetime | None = None
        if when_text:
            choice = check_when(when_text, tz, self.now)
            if isinstance(choice, str):
                return choice
            scheduled = choice.at
        try:
            return data.PostInput(
                body=body, media=media, connection_ids=chosen, timezone=tz, scheduled_at=scheduled
            )
        except ValidationError as exc:
            return _pydantic_reason(exc)

    def action_save(self) -> None:
        self.validate_input()
        if isinstance(self.result, str):
            self.notify(f"not saved: {self.result}", severity="error")
            return
        self.dismiss(self.result)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ResolveModal(ModalScreen[bool | None]):
    """Outcome unknown: a person checked the platform. `p` it is there, `n` it is not."""

    BINDINGS: ClassVar = [
        Binding("p", "answer(True)", "it is published", id="post_resolve.published"),
        Binding("n", "answer(False)", "not there: send again", id="post_resolve.send_again"),
        Binding("escape", "cancel", "cancel", id="post_resolve.cancel"),
    ]

    def __init__(self, pub: data.PublicationRow) -> None:
        super().__init__()
        self.pub = pub

    def compose(self) -> ComposeResult:
        # Statics, not Labels: they wrap at the dialog's width (a Label is cut at 80 columns).
        with Vertical(classes="dialog", id="resolve-dialog"):
            yield Static(
                f"[b]Outcome unknown[/] on {escape(self.pub.platform)} "
                f"{escape(self.pub.connection)}: the request may have reached the platform."
            )
            yield Static(escape(self.pub.last_error or "no error was recorded"), classes="hint")
            yield Static(
                "Check the account, then: [b]p[/] it is there (published)   "
                "[b]n[/] it is not (send again)   [b]esc[/] later",
                classes="hint",
            )

    def action_answer(self, published: bool) -> None:
        self.dismiss(published)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DetailModal(ModalScreen[None]):
    """A post's publications with every attempt and error, and how each did (metrics)."""

    BINDINGS: ClassVar = [
        Binding("escape", "close", "close", id="post_detail.close"),
        Binding("q", "close", "close", id="post_detail.close"),
    ]

    def __init__(
        self,
        post: data.PostRow,
        attempts: dict[int, tuple[data.AttemptLine, ...]],
        metrics: dict[int, tuple[post_metrics.MetricPoint, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.post = post
        self.attempts = attempts
        self.metrics = metrics or {}

    def compose(self) -> ComposeResult:
        lines = [
            f"[b]Post #{self.post.id}[/] {styled(self.post.status).markup} · "
            f"{escape(self.post.local_time())} {escape(self.post.timezone)}",
            escape(self.post.body),
        ]
        if self.post.media:
            lines.append("media: " + escape(", ".join(self.post.media)))
        for pub in self.post.publications:
            lines.append("")
            lines.append(
                f"[b]{escape(pub.platform)} {escape(pub.connection)}[/] — {escape(pub.status)}, "
                f"{pub.attempts} attempt(s)"
                + (f", due {when(pub.due_at)}" if pub.status == "scheduled" else "")
            )
            if pub.external_url:
                lines.append(f"  {escape(pub.external_url)}")
            if pub.last_error:
                lines.append(f"  [red]{escape(pub.last_error)}[/]")
            points = self.metrics.get(pub.id, ())
            lines.extend(f"  {escape(line)}" for line in post_metrics.metric_lines(points))
            for n, attempt in enumerate(self.attempts.get(pub.id, ()), start=1):
                late = f" late {millis(attempt.lateness_ms)}" if attempt.lateness_ms else ""
                http = f" HTTP {attempt.http_status}" if attempt.http_status else ""
                lines.append(
                    f"  {n}. {attempt.started_at.astimezone(UTC):%m-%d %H:%M:%S} "
                    f"{escape(attempt.outcome)}{http}{late}"
                    + (f" — {escape(attempt.error)}" if attempt.error else "")
                )
        with Vertical(classes="dialog", id="post-detail"):
            with VerticalScroll():
                yield Static("\n".join(lines), id="detail-text")
            yield Label("[b]esc[/] close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
