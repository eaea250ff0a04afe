"""Posts: list and week-calendar views per account; compose, schedule, reschedule, cancel,
retry failed, resolve outcome-unknown, and a publication detail with every attempt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis
from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.data import post_metrics
from console.data import publishing as data
from console.data.common import STORE_ERRORS
from console.screens.live import LiveScreen, describe
from console.screens.post_list import LIST_COLUMNS, post_cells, post_id, post_key
from console.screens.post_modals import (
    ComposeModal,
    DetailModal,
    ResolveModal,
    ScheduleModal,
    WhenChoice,
    styled,
)
from console.screens.post_week import DAYS, day_width, week_grid, week_rows
from console.widgets.filter_bar import FilterBar
from console.widgets.virtual_table import (
    VirtualTable,
    Window,
    window_is_stale,
    window_offset,
)

# --- the screen ----------------------------------------------------------------------------------


class PostsScreen(LiveScreen):
    TITLE = "Posts"

    BINDINGS: ClassVar = [
        Binding(
            "n",
            "compose",
            "new",
            tooltip="compose a post (multi-line), schedule it",
            id="posts.compose",
        ),
        Binding(
            "s",
            "schedule",
            "schedule",
            tooltip="schedule or reschedule (timezone-aware)",
            id="posts.schedule",
        ),
        Binding(
            "c",
            "cancel_post",
            "cancel",
            tooltip="cancel what has not gone out (asks)",
            id="posts.cancel",
        ),
        Binding(
            "r", "retry", "retry", tooltip="retry the post's failed publications", id="posts.retry"
        ),
        Binding(
            "u",
            "resolve",
            "resolve",
            tooltip="resolve an outcome-unknown publication",
            id="posts.resolve",
        ),
        Binding(
            "enter", "detail", "detail", tooltip="publications and every attempt", id="posts.detail"
        ),
        Binding("w", "toggle_view", "week", tooltip="list / week calendar", id="posts.week_view"),
        Binding(
            "a", "next_account", "account", tooltip="cycle the account filter", id="posts.account"
        ),
        Binding(
            "left_square_bracket",
            "week(-1)",
            "prev wk",
            key_display="[",
            show=False,
            id="posts.prev_week",
        ),
        Binding(
            "right_square_bracket",
            "week(1)",
            "next wk",
            key_display="]",
            show=False,
            id="posts.next_week",
        ),
        Binding(
            "slash",
            "filter",
            "filter",
            key_display="/",
            tooltip="filter by text",
            id="posts.filter",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view = data.PostsView((), (), ())
        self.shown: Sequence[data.PostRow | None] = []
        self.calendar = False
        self.week_of: datetime | None = None
        self.account: int | None = None
        self.timezone = "UTC"

    def compose_body(self) -> ComposeResult:
        # The list: every post, read a window at a time; the week: a DataTable of its days.
        yield VirtualTable(LIST_COLUMNS, post_cells, post_key, id="posts-list")
        yield DataTable(id="posts", cursor_type="cell", zebra_stripes=True)
        yield Static(" ", id="detail")
        yield FilterBar("filter posts by text, status or account…")

    def on_mount(self) -> None:
        self._columns()
        super().on_mount()

    def set_argument(self, argument: str | None) -> None:
        """`:posts 3` shows the posts of connection 3 (`:posts` alone: every account)."""
        self.account = int(argument) if argument and argument.isdigit() else None
        self.request_reload()

    @property
    def week_table(self) -> DataTable[Text | str]:
        return self.query_one("#posts", DataTable)

    @property
    def list_table(self) -> VirtualTable[data.PostRow | None]:
        return self.query_one("#posts-list", VirtualTable)

    @property
    def table(self) -> DataTable[Text | str] | VirtualTable[data.PostRow | None]:
        """The table on screen: the week's, or the list's."""
        return self.week_table if self.calendar else self.list_table

    @property
    def filter_text(self) -> str:
        return self.query_one(FilterBar).value.strip()

    @property
    def day_width(self) -> int:
        return day_width(self.size.width - 2)  # less the table's scrollbar and border

    def on_resize(self) -> None:
        if self.calendar and self.is_mounted:  # wider days show more of each post's title
            self._columns()
            self._redraw()

    def _columns(self) -> None:
        self.week_table.display = self.calendar
        self.list_table.display = not self.calendar
        self.table.focus()
        if not self.calendar:
            return
        table = self.week_table
        table.clear(columns=True)
        start = data.week_start(self.week_of or self.deck.now(), self.timezone)
        for n, day in enumerate(DAYS):
            date = (start + timedelta(days=n)).astimezone(ZoneInfo(self.timezone))
            table.add_column(f"{day} {date:%m-%d}", key=day, width=self.day_width)

    async def fetch(self) -> data.PostsView:
        return await data.load_posts(
            self.deck.db,
            connection_id=self.account,
            week_of=(self.week_of or self.deck.now()) if self.calendar else None,
            timezone=self.timezone,
            offset=window_offset(self.list_table, data.WINDOW_ROWS),
            search=self.filter_text or None,
        )

    def _tick(self) -> None:
        # The list scrolled or jumped past the posts read: read the window there now.
        rows = self.list_table.rows
        if (
            not self.calendar
            and isinstance(rows, Window)
            and not self._loading
            and window_is_stale(self.list_table, rows)
        ):
            self._reload_asked = True
        super()._tick()

    def show(self, view: data.PostsView) -> None:
        if not self.calendar and view.search != (self.filter_text or None):
            return  # the filter changed while this load ran; the next load is on its way
        changed = view != self.view
        self.view = view
        if changed or self.table.row_count == 0:
            self._redraw()
        counts = ", ".join(f"{n} {status}" for status, n in view.counts) or "no publications"
        account = self._account_name()
        mode = "week of " + self._week_label() if self.calendar else "list"
        self.set_status(
            f"{view.total} posts · {mode} · account: {escape(account)} · {counts} · "
            f"updated {self.deck.now():%H:%M:%S}"
        )

    def _account_name(self) -> str:
        for conn in self.view.connections:
            if conn.id == self.account:
                return f"{conn.platform} {conn.display_name}"
        return "all"

    def _week_label(self) -> str:
        start = data.week_start(self.week_of or self.deck.now(), self.timezone)
        return f"{start.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d} ({self.timezone})"

    def _redraw(self) -> None:
        if self.calendar:
            filter_text = self.filter_text
            self.shown = [p for p in self.view.posts if not filter_text or p.matches(filter_text)]
            self.week_table.clear()
            self._render_week()
        else:
            # The filter ran in the query; the table paints only the rows on screen.
            view = self.view
            self.shown = Window[data.PostRow](view.posts, view.offset, view.total, post_id)
            self.list_table.set_rows(self.shown)
        self._show_detail()

    def _render_week(self) -> None:
        start = data.week_start(self.week_of or self.deck.now(), self.timezone)
        self.grid = week_grid(self.shown, start)
        for cells in week_rows(self.grid, self.timezone, self.day_width):
            self.week_table.add_row(*cells)

    def selected(self) -> data.PostRow | None:
        if self.calendar:
            coordinate = self.week_table.cursor_coordinate
            days = getattr(self, "grid", [])
            if coordinate.column < len(days) and coordinate.row < len(days[coordinate.column]):
                post: data.PostRow = days[coordinate.column][coordinate.row]
                return post
            return None
        return self.list_table.row_at_cursor()

    @on(VirtualTable.RowHighlighted)
    def _cursor_moved(self) -> None:
        self._tick()  # a jump past the rows read reads the window there now, not a tick later
        self._show_detail()

    @on(DataTable.CellHighlighted)
    def _show_detail(self) -> None:
        post = self.selected()
        detail = self.query_one("#detail", Static)
        if post is None:
            detail.update("no post selected · [b]n[/] new post" if not self.view.posts else " ")
            return
        problems = [p for p in post.publications if p.status in ("failed", "unknown")]
        extra = ""
        if problems:
            first = problems[0]
            extra = f" · [red]{escape(first.connection)}: {escape(first.last_error or '')}[/]"
        detail.update(
            f"[b]#{post.id}[/] {styled(post.status).markup} {escape(post.local_time())} "
            f"{escape(post.timezone)} · {escape(post.targets())}{extra}"
        )

    @on(FilterBar.Changed)
    def _filter_changed(self) -> None:
        if self.calendar:
            self._redraw()  # the week is in memory: at every key

    @on(FilterBar.Settled)
    def _apply_filter(self) -> None:
        if not self.calendar:  # the list filters in the query: once typing pauses, from the top
            self.list_table.move_cursor(row=0)
            self.request_reload()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_toggle_view(self) -> None:
        self.calendar = not self.calendar
        self._columns()
        self.request_reload()

    def action_week(self, step: int) -> None:
        if not self.calendar:
            return
        self.week_of = (self.week_of or self.deck.now()) + timedelta(days=7 * step)
        self._columns()
        self.request_reload()

    def action_next_account(self) -> None:
        ids = [None, *(c.id for c in self.view.connections)]
        position = ids.index(self.account) if self.account in ids else 0
        self.account = ids[(position + 1) % len(ids)]
        self.request_reload()

    # --- edits ----------------------------------------------------------------------------------

    def _target(self, verb: str) -> data.PostRow | None:
        if self.deck.refuse_read_only(verb):
            return None
        post = self.selected()
        if post is None:
            self.notify(f"no post to {verb}", severity="warning")
        return post

    async def _pool(self) -> ArqRedis | None:
        try:
            return await self.deck.queue_pool()
        except STORE_ERRORS:
            return None  # Postgres still takes the edit; the engine's reconcile enqueues it

    def action_compose(self) -> None:
        if self.deck.refuse_read_only("compose"):
            return
        if not self.view.connections:
            self.notify(
                "no connected account: add one with `creatordeck connections add`",
                severity="warning",
            )
            return

        def save(post: data.PostInput | None) -> None:
            if post is not None:
                self.timezone = post.timezone
                self._write_compose(post)

        self.app.push_screen(
            ComposeModal(self.view.connections, self.timezone, self.deck.now()), save
        )

    @work(group="edit", exit_on_error=False)
    async def _write_compose(self, post: data.PostInput) -> None:
        deck = self.deck
        what = "scheduled" if post.scheduled_at else "saved as a draft"
        await self.run_edit(
            data.compose_post(deck.db, await self._pool(), deck.settings, post, deck.now()),
            failed="not saved",
            done=lambda saved: f"post #{saved[0]} {what}{saved[1]}",
        )

    def action_schedule(self) -> None:
        post = self._target("schedule")
        if post is None:
            return
        tz = post.timezone
        start = ""
        if post.scheduled_at is not None:
            start = f"{post.scheduled_at.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"
        verb = "Reschedule" if post.scheduled_at else "Schedule"

        def save(choice: WhenChoice | None) -> None:
            if choice is not None:
                self._write_schedule(post.id, choice, post.version)

        self.app.push_screen(
            ScheduleModal(f"{verb} post #{post.id}", start, tz, self.deck.now()), save
        )

    @work(group="edit", exit_on_error=False)
    async def _write_schedule(self, post_id: int, choice: WhenChoice, version: int) -> None:
        deck = self.deck
        await self.run_edit(
            data.reschedule_post(
                deck.db,
                await self._pool(),
                deck.settings,
                post_id,
                choice.at,
                choice.timezone,
                deck.now(),
                version,  # the version on screen: a stale save is refused
            ),
            failed="not scheduled",
            done=lambda note: f"post #{post_id} scheduled for {choice.at:%Y-%m-%d %H:%M} UTC{note}",
        )

    def action_cancel_post(self) -> None:
        post = self._target("cancel")
        if post is None:
            return

        self.confirm(
            f"Cancel post #{post.id}? Publications already out stay out.",
            lambda: self._write_cancel(post.id, post.version),
        )

    @work(group="edit", exit_on_error=False)
    async def _write_cancel(self, post_id: int, version: int) -> None:
        deck = self.deck
        await self.run_edit(
            data.cancel_post(deck.db, await self._pool(), deck.settings, post_id, version),
            failed="not cancelled",
            done=lambda note: f"post #{post_id} cancelled{note}",
        )

    def action_retry(self) -> None:
        post = self._target("retry")
        if post is None:
            return
        failed = [p.id for p in post.publications if p.status == "failed"]
        if not failed:
            self.notify("nothing failed in this post", severity="warning")
            return
        self._write_retry(post.id, failed)

    @work(group="edit", exit_on_error=False)
    async def _write_retry(self, post_id: int, publication_ids: list[int]) -> None:
        deck, count = self.deck, len(publication_ids)
        await self.run_edit(
            data.retry_failed(
                deck.db, await self._pool(), deck.settings, publication_ids, deck.now()
            ),
            failed="not retried",
            done=lambda note: f"post #{post_id}: {count} publication(s) retried{note}",
        )

    def action_resolve(self) -> None:
        post = self._target("resolve")
        if post is None:
            return
        unknown = [p for p in post.publications if p.status == "unknown"]
        if not unknown:
            self.notify("no publication of this post has an unknown outcome", severity="warning")
            return
        pub = unknown[0]

        def answer(published: bool | None) -> None:
            if published is not None:
                self._write_resolve(pub.id, published)

        self.app.push_screen(ResolveModal(pub), answer)

    @work(group="edit", exit_on_error=False)
    async def _write_resolve(self, publication_id: int, published: bool) -> None:
        deck = self.deck
        verdict = "marked published" if published else "sent again"
        await self.run_edit(
            data.resolve_unknown(
                deck.db, await self._pool(), deck.settings, publication_id, published, deck.now()
            ),
            failed="not resolved",
            done=lambda note: f"publication {publication_id} {verdict}{note}",
        )

    def action_detail(self) -> None:
        post = self.selected()
        if post is not None:
            self._open_detail(post)

    @on(VirtualTable.RowSelected)
    @on(DataTable.CellSelected)
    def _row_selected(self) -> None:
        self.action_detail()

    @work(group="detail", exclusive=True, exit_on_error=False)
    async def _open_detail(self, post: data.PostRow) -> None:
        try:
            attempts = {
                pub.id: await data.load_attempts(self.deck.db, pub.id) for pub in post.publications
            }
            metrics = await post_metrics.load_post_metrics(self.deck.db, post.id)
        except STORE_ERRORS as exc:
            self.notify(f"cannot load attempts: {describe(exc)}", severity="error")
            return
        self.app.push_screen(DetailModal(post, attempts, metrics))
