"""Connections: the platform accounts posts go to — status, token expiry, platform breaker."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.data import publishing as data
from console.data.common import STORE_ERRORS
from console.screens.live import LiveScreen, row_at_cursor
from console.widgets.formatting import count, millis, when
from console.widgets.virtual_table import Column, fit_columns

# The name is as wide as the columns beside it leave, up to its width (the line under the
# table shows a longer one whole); the others keep theirs.
COLUMNS = (
    Column("#", "id", 4),
    Column("Platform", "platform", 9),
    Column("Name", "name", 40, shrink_to=10),
    Column("Status", "status", 12),
    Column("Expires", "expires", 19),
    Column("Breaker", "breaker", 9),
    Column("Account id", "account", 20),
)
# Below this width the account id gives way (the line under the table shows it) and Expires
# keeps only the time left ("in 6d23h"; the line under the table gives the date).
WIDE = 110
NARROW_EXPIRES = 10
SCROLLBAR = 2  # kept free: a vertical scrollbar appears when the accounts outgrow the screen
EXPIRY_WARNING = timedelta(days=7)


def columns_for(width: int) -> list[tuple[str, str, int]]:
    """(label, key, width) of the columns shown in a screen `width` cells wide."""
    if width >= WIDE:
        chosen = list(COLUMNS)
    else:
        chosen = [
            replace(c, width=NARROW_EXPIRES) if c.key == "expires" else c
            for c in COLUMNS
            if c.key != "account"
        ]
    # Only the name shrinks, so the name gets what the others leave.
    fitted = fit_columns(chosen, width - SCROLLBAR)
    return [(chosen[i].label, chosen[i].key, w) for i, w in fitted]


def expiry(moment: datetime | None, now: datetime, short: bool = False) -> Text:
    if moment is None:
        return Text("no expiry", style="dim")  # the platform gave the token no expiry
    left = moment - now
    if left <= timedelta(0):
        return Text("expired", style="bold red")
    label = f"in {millis(int(left.total_seconds() * 1000))}"
    if not short:
        label = f"{when(moment)} ({label})"
    return Text(label, style="yellow" if left < EXPIRY_WARNING else "")


def connection_cells(
    row: data.ConnectionRow, now: datetime, keys: list[str]
) -> tuple[Text | str, ...]:
    ok = row.status == "ok"
    breaker_style = {"closed": "green", "open": "bold red", "half_open": "yellow"}
    cells: dict[str, Text | str] = {
        "id": str(row.id),
        "platform": row.platform,
        "name": row.display_name,
        "status": Text("ok", style="green") if ok else Text("needs reauth", style="bold red"),
        "expires": expiry(row.expires_at, now, short="account" not in keys),
        "breaker": Text(row.breaker, style=breaker_style.get(row.breaker, "dim")),
        "account": row.account_id,
    }
    return tuple(cells[key] for key in keys)


class ConnectionsScreen(LiveScreen):
    TITLE = "Connections"
    refresh_s = 5.0

    BINDINGS: ClassVar = [
        Binding(
            "p", "posts", "posts", tooltip="posts of the selected account", id="connections.posts"
        ),
        Binding(
            "c",
            "connect",
            "connect",
            tooltip="connect an account (OAuth)",
            id="connections.connect",
        ),
        Binding(
            "r",
            "reconnect",
            "connect again",
            tooltip="connect the selected account again",
            id="connections.reconnect",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: tuple[data.ConnectionRow, ...] = ()
        self.columns: list[tuple[str, str, int]] = []

    def compose_body(self) -> ComposeResult:
        yield DataTable(id="connections", cursor_type="row", zebra_stripes=True)
        yield Static(" ", id="detail")

    def on_resize(self) -> None:
        if self._fit_columns():
            rows, self.rows = self.rows, ()
            self.show(rows)  # the rows again, in the new columns

    def _fit_columns(self) -> bool:
        columns = columns_for(self.size.width)
        if columns == self.columns:
            return False
        self.columns = columns
        self.table.clear(columns=True)
        for label, key, width in columns:
            self.table.add_column(label, key=key, width=width)
        return True

    async def fetch(self) -> tuple[data.ConnectionRow, ...]:
        try:
            redis = await self.deck.queue_pool()
        except STORE_ERRORS:
            redis = None  # breaker states unknown; the rest still shows
        return await data.load_connections(self.deck.db, redis, self.deck.settings)

    def show(self, rows: tuple[data.ConnectionRow, ...]) -> None:
        now = self.deck.now()
        if not self.columns:
            self._fit_columns()
        if rows != self.rows or self.table.row_count != len(rows):
            self.rows = rows
            table = self.table
            table.clear()
            keys = [key for _, key, _ in self.columns]
            for row in rows:
                table.add_row(*connection_cells(row, now, keys), key=str(row.id))
        reauth = sum(1 for r in rows if r.status != "ok")
        expiring = sum(1 for r in rows if r.expires_at and r.expires_at - now < EXPIRY_WARNING)
        text = count(len(rows), "account")
        if reauth:
            text += f", [b red]{reauth} need{'s' if reauth == 1 else ''} re-authorisation[/]"
        if expiring:
            text += f", [yellow]{expiring} expire{'s' if expiring == 1 else ''} within 7 days[/]"
        # The keys are in the footer; the status line keeps to one line at 80 columns.
        self.set_status(f"{text} · updated {now:%H:%M:%S}")
        self._show_detail()

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#connections", DataTable)

    def selected(self) -> data.ConnectionRow | None:
        table = self.table
        return row_at_cursor(table, self.rows)

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#detail", Static)
        if row is None:
            detail.update("no accounts yet · c connects one (or `creatordeck connections connect`)")
            return
        reason = f" · [red]{escape(row.status_reason)}[/]" if row.status_reason else ""
        expires = f" · expires {when(row.expires_at)}" if row.expires_at else ""
        detail.update(
            f"[b]{escape(row.platform)} {escape(row.display_name)}[/] "
            f"({escape(row.account_id)}) · {escape(row.status)}{reason}{expires}"
        )

    def action_connect(self, row: data.ConnectionRow | None = None) -> None:
        from console.data.common import current_actor
        from console.screens.connect_modal import ConnectModal

        def done(line: str | None) -> None:
            if line:
                self.notify(line)
            self.request_reload()

        modal = ConnectModal(
            self.deck.settings,
            self.deck.db,
            current_actor(),
            self.deck.now,
            row.platform if row else None,
            row.account_id if row else None,
        )
        self.app.push_screen(modal, done)

    def action_reconnect(self) -> None:
        row = self.selected()
        if row is None:
            self.notify("no account selected: c connects a new one", severity="warning")
            return
        self.action_connect(row)

    async def action_posts(self) -> None:
        row = self.selected()
        await self.deck.open_screen("posts", str(row.id) if row else None)
