"""Audit: who changed what and when, before and after; filtered by actor, region, post or
experiment.

Every audited edit of the console (and of the CLI) is a row, newest first; the table reads a
window of rows at the scroll position and knows how many match (console.data.audit), so it
never caps. The pane under the table shows the selected change field by field
(`field: before → after`). `/` filters (`actor:alice region:DETROIT_METRO`, `post:42`,
`experiment:onboarding`, or a bare actor or id); `a` keeps only the selected row's actor, `o`
only its entity; `esc` clears. `:audit region:DETROIT_METRO` opens it filtered.
"""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from console.data import audit as data
from console.data.audit import AuditFilter, AuditFilterError, AuditRow, AuditView
from console.screens.live import LiveScreen
from console.widgets.filter_bar import FilterBar
from console.widgets.formatting import count, when_seconds
from console.widgets.virtual_table import (
    CELL_PADDING,
    Column,
    VirtualTable,
    Window,
    window_is_stale,
    window_offset,
)

DETAIL_SHARE = 5  # a fifth of the screen's rows show the change under the table (then "+N more")
# Most telling first: at 80 columns when, who, what and which fit whole (the pane under the
# table shows the change); wider, a Change column takes the rest of the width. The Id column
# gets what the others leave (ID_MAX at most while a Change column fits beside it).
COLUMNS = (
    Column("When (UTC)", "at", 14),
    Column("Actor", "actor", 12),
    Column("Action", "action", 15),  # the longest short action: backfill_cancel, status:stopped
    Column("Entity", "entity", 11),
)
ID_MIN, ID_MAX = 12, 20
CHANGE_MIN = 20
SCROLLBAR = 2  # the table's vertical scrollbar, when the rows overflow
ENTITY_SHORT = {"tracking_credential": "credential"}  # the pane below says it in full


def columns_for(width: int) -> tuple[Column, ...]:
    """The columns at this width: the Change column only where it gets CHANGE_MIN cells."""
    used = sum(column.width + 2 * CELL_PADDING for column in COLUMNS) + SCROLLBAR
    rest = width - used - 2 * CELL_PADDING  # for the Id column (and Change)
    change = rest - ID_MAX - 2 * CELL_PADDING
    if change < CHANGE_MIN:
        return (*COLUMNS, Column("Id", "entity_id", max(rest, ID_MIN)))
    return (*COLUMNS, Column("Id", "entity_id", ID_MAX), Column("Change", "change", change))


def short_action(row: AuditRow) -> str:
    """The action without its entity's name in front (`post.schedule` on a post: `schedule`)."""
    return row.action.removeprefix(f"{row.entity}.")


PLACEHOLDER = (Text("…", style="dim"),)


def audit_key(row: AuditRow | None) -> object:
    return row.id if row is not None else None


def audit_cells(row: AuditRow | None) -> tuple[Text | str, ...]:
    if row is None:
        return PLACEHOLDER  # not read yet: the next load brings it
    changes = row.changes
    summary = changes[0] if changes else ""
    if len(changes) > 1:
        summary += f" (+{len(changes) - 1})"
    return (
        when_seconds(row.at),
        Text(row.actor, style="bold"),
        short_action(row),
        ENTITY_SHORT.get(row.entity, row.entity),
        row.entity_id,
        Text(summary, style="dim"),
    )


def detail_text(row: AuditRow, lines: int) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"#{row.id} ", style="dim")
    out.append(f"{when_seconds(row.at)} ")
    out.append(row.actor, style="bold")
    out.append(f" {row.action} {row.entity} ")
    out.append(row.entity_id, style="bold")
    changes = row.changes
    if not changes:
        out.append("\n(no fields recorded)", style="dim")
    shown = changes if len(changes) <= lines else changes[: lines - 1]
    for line in shown:
        out.append("\n  " + line)
    if len(shown) < len(changes):
        out.append(f"\n  +{len(changes) - len(shown)} more fields", style="dim")
    return out


class AuditScreen(LiveScreen):
    TITLE = "Audit"

    DEFAULT_CSS = """
    AuditScreen #audit-detail {
        height: auto;
        min-height: 2;
        padding: 0 1;
        background: $surface;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    BINDINGS: ClassVar = [
        Binding(
            "slash",
            "filter",
            "filter",
            key_display="/",
            tooltip="filter: actor:NAME, region:CODE, post:ID, experiment:KEY, or a word",
            id="audit.filter",
        ),
        Binding("a", "by_actor", "by actor", tooltip="only this row's actor", id="audit.by_actor"),
        Binding(
            "o", "by_entity", "by entity", tooltip="only this row's entity", id="audit.by_entity"
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.where = AuditFilter()
        self.view: AuditView | None = None
        self.filter_error: str | None = None

    def compose_body(self) -> ComposeResult:
        yield VirtualTable(columns_for(self.app.size.width), audit_cells, audit_key, id="audit")
        yield Static(" ", id="audit-detail")
        yield FilterBar("filter: actor:NAME region:CODE post:ID experiment:KEY, or a word…")

    async def fetch(self) -> AuditView:
        return await data.load_audit(self.deck.db, self.where, self._window_offset())

    def show(self, view: AuditView) -> None:
        if view.where != self.where:
            return  # the filter changed while this load ran; the next load is on its way
        if self.view is None or view != self.view:
            self.table.set_rows(Window(view.rows, view.offset, view.total, audit_key))
        self.view = view
        text = count(view.total, "change")
        shown = data.filter_text(self.where)
        if shown:
            text += f" · filter [b]{escape(shown)}[/]"
        if self.filter_error:
            text += f" · [b red]{escape(self.filter_error)}[/]"
        self.set_status(f"{text} · updated {self.deck.now():%H:%M:%S}")
        self._show_detail()

    def on_resize(self) -> None:
        columns = columns_for(self.size.width)
        if columns != self.table.columns:
            self.table.set_columns(columns)

    @property
    def table(self) -> VirtualTable[AuditRow | None]:
        return self.query_one("#audit", VirtualTable)

    def _window_offset(self) -> int:
        return window_offset(self.table, data.WINDOW_ROWS)

    def _tick(self) -> None:
        # Scrolled or jumped past the rows read: read the window there now.
        rows = self.table.rows
        if isinstance(rows, Window) and not self._loading and window_is_stale(self.table, rows):
            self._reload_asked = True
        super()._tick()

    def selected(self) -> AuditRow | None:
        return self.table.row_at_cursor()

    @on(VirtualTable.RowHighlighted)
    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#audit-detail", Static)
        if row is not None:
            detail.update(detail_text(row, max(3, self.size.height // DETAIL_SHARE)))
        elif self.view is not None and not self.view.total:
            what = "no change matches this filter" if data.filter_text(self.where) else "no changes"
            detail.update(Text(f"{what} yet · / filter · esc clears", style="dim"))
        else:
            detail.update(" ")  # a row not read yet: the next load brings it

    # Filters.

    def set_argument(self, argument: str | None) -> None:
        """`:audit region:DETROIT_METRO` (or any filter text) opens the log filtered; `:audit`
        alone keeps the filter it had."""
        if argument:
            self._filter_by(argument)

    def _refilter(self, where: AuditFilter) -> None:
        if where != self.where:
            self.where = where
            self.table.move_cursor(row=0)  # a new list: start at its top
        self.request_reload()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(FilterBar.Settled)
    def _apply_filter(self) -> None:
        try:
            where = data.parse_filter(self.query_one(FilterBar).value)
        except AuditFilterError as exc:
            self.filter_error = str(exc)  # the last good filter stays; the status says why
        else:
            self.filter_error = None
            self._refilter(where)
        if self.view is not None:
            self.show(self.view)

    def _filter_by(self, text: str) -> None:
        bar = self.query_one(FilterBar)
        bar.value = text
        bar.add_class("-shown")
        self._apply_filter()

    def action_by_actor(self) -> None:
        row = self.selected()
        if row is not None:
            self._filter_by(data.filter_text(AuditFilter(actor=row.actor)))

    def action_by_entity(self) -> None:
        row = self.selected()
        if row is not None:
            self._filter_by(
                data.filter_text(AuditFilter(entity=row.entity, entity_id=row.entity_id))
            )
