"""Connections: the platform accounts posts go to — status, token expiry, platform breaker."""

from __future__ import annotations

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

COLUMNS = (
    ("#", "id", 4),
    ("Platform", "platform", 9),
    ("Name", "name", 18),
    ("Status", "status", 12),
    ("Expires", "expires", 16),
    ("Breaker", "breaker", 9),
    ("Account id", "account", 20),
)
EXPIRY_WARNING = timedelta(days=7)


def expiry(moment: datetime | None, now: datetime) -> Text:
    if moment is None:
        return Text("-", style="dim")
    left = moment - now
    if left <= timedelta(0):
        return Text("expired", style="bold red")
    label = f"{when(moment)} ({millis(int(left.total_seconds() * 1000))})"
    return Text(label, style="yellow" if left < EXPIRY_WARNING else "")


def connection_cells(row: data.ConnectionRow, now: datetime) -> tuple[Text | str, ...]:
    ok = row.status == "ok"
    breaker_style = {"closed": "green", "open": "bold red", "half_open": "yellow"}
    return (
        str(row.id),
        row.platform,
        row.display_name,
        Text("ok", style="green") if ok else Text("needs reauth", style="bold red"),
        expiry(row.expires_at, now),
        Text(row.breaker, style=breaker_style.get(row.breaker, "dim")),
        row.account_id,
    )


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

    def compose_body(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(
            id="connections", cursor_type="row", zebra_stripes=True
        )
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        yield Static(" ", id="detail")

    async def fetch(self) -> tuple[data.ConnectionRow, ...]:
        try:
            redis = await self.deck.queue_pool()
        except STORE_ERRORS:
            redis = None  # breaker states unknown; the rest still shows
        return await data.load_connections(self.deck.db, redis, self.deck.settings)

    def show(self, rows: tuple[data.ConnectionRow, ...]) -> None:
        now = self.deck.now()
        if rows != self.rows or self.table.row_count != len(rows):
            self.rows = rows
            table = self.table
            table.clear()
            for row in rows:
                table.add_row(*connection_cells(row, now), key=str(row.id))
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
        detail.update(
            f"[b]{escape(row.platform)} {escape(row.display_name)}[/] "
            f"({escape(row.account_id)}) · {escape(row.status)}{reason}"
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
