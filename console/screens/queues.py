"""Queues: the jobs of each arq queue, a page at a time; detail, retry, abort, delete.

arq has no dashboard: this is it. `1`-`4` (or `w`) pick the queue, `v` switches between the
queued jobs (soonest first, paged: `n`/`p`) and the finished ones (arq keeps results an hour),
`enter` opens a job with its result or traceback. A queue of 100,000 jobs loads one page
(engine.queue_admin: ZRANGE by index and one pipelined round trip), never the whole queue.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console.data import ops as data_ops
from console.data.common import KNOWN_ERRORS, current_actor
from console.data.ops import JobDetail, JobState, JobSummary, QueuesView
from console.screens.live import LiveScreen
from console.widgets.filter_bar import FilterBar
from console.widgets.formatting import when_seconds
from console.widgets.virtual_table import Column, VirtualTable

STATE_STYLES = {
    JobState.DEFERRED: "cyan",
    JobState.READY: "bold",
    JobState.RUNNING: "bold yellow",
    JobState.DONE: "green",
    JobState.FAILED: "bold red",
    JobState.GONE: "dim",
}

ARGS_MIN_WIDTH = 24
COLUMNS = (
    Column("Run at", "run_at", 14),
    Column("State", "state", 8),
    Column("Function", "function", 11),
    Column("Args", "args", 24, shrink_to=12),
    Column("Try", "tries", 3),
    Column("Job id", "job_id", 30, shrink_to=14),
    Column("Enqueued", "enqueued", 14, hide_below=100),
)


def short_id(job_id: str, prefix: str) -> str:
    return job_id[len(prefix) + 1 :] if job_id.startswith(prefix + ":") else job_id


def job_key(job: JobSummary) -> str:
    return job.job_id


def job_cells(job: JobSummary, prefix: str) -> tuple[Text | str, ...]:
    # Text cells, never markup strings: arguments are data (a "[red]" in them stays text).
    return (
        Text(when_seconds(job.run_at)),
        Text(job.state.value, style=STATE_STYLES[job.state]),
        Text(job.function),
        Text(job.args),
        Text(str(job.tries)),
        Text(short_id(job.job_id, prefix)),
        Text(when_seconds(job.enqueued_at)),
    )


class JobDetailModal(ModalScreen[None]):
    """One job: arguments, tries, times, and its result or exception. `esc` closes."""

    DEFAULT_CSS = """
    #job-dialog {
        width: 100;
        max-width: 100%;
        max-height: 100%;
    }
    """

    BINDINGS: ClassVar = [
        Binding("escape", "close", "close", id="job_detail.close"),
        Binding("q", "close", "close", show=False, id="job_detail.close"),
    ]

    def __init__(self, detail: JobDetail) -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        d = self.detail
        s = d.summary
        lines = [
            f"[b]{escape(s.job_id)}[/]",
            f"queue [b]{s.queue}[/] · state [b]{s.state.value}[/] · try {s.tries}",
            f"call  {escape(s.function)}({escape(s.args)})",
            f"enqueued {when_seconds(s.enqueued_at)} · run at {when_seconds(s.run_at)}",
        ]
        if d.started_at is not None:
            lines.append(
                f"started {when_seconds(d.started_at)} · finished {when_seconds(d.finished_at)}"
            )
        if d.result is None:
            lines.append("[dim]no result yet (arq writes it when the job ends)[/]")
        elif d.success:
            lines.append(f"[green]result[/] {escape(d.result)}")
        else:
            lines.append(f"[b red]failed[/]\n{escape(d.result)}")
        with VerticalScroll(classes="dialog", id="job-dialog"):
            yield Static("\n".join(lines), id="job-detail")
            yield Label("[b]esc[/] close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class QueuesScreen(LiveScreen):
    TITLE = "Queues"
    refresh_s = 2.0
    DEFAULT_CSS = """
    #queue-tabs {
        height: 1;
        background: $boost;
    }
    """

    BINDINGS: ClassVar = [
        Binding("w", "next_queue", "queue", tooltip="next queue (or 1-5)", id="queues.next_queue"),
        Binding("1", "pick(0)", "ticks", show=False, id="queues.pick_ticks"),
        Binding("2", "pick(1)", "fetch", show=False, id="queues.pick_fetch"),
        Binding("3", "pick(2)", "publish", show=False, id="queues.pick_publish"),
        Binding("4", "pick(3)", "rollups", show=False, id="queues.pick_rollups"),
        Binding("5", "pick(4)", "metrics", show=False, id="queues.pick_metrics"),
        Binding("v", "toggle_view", "view", tooltip="queued / finished", id="queues.view"),
        Binding("n", "page(1)", "next", tooltip="next page", id="queues.next_page"),
        Binding("p", "page(-1)", "prev", tooltip="previous page", id="queues.prev_page"),
        Binding("enter", "detail", "detail", tooltip="job detail", id="queues.detail"),
        Binding("r", "retry", "retry", tooltip="run the job now (again)", id="queues.retry"),
        Binding("a", "abort", "abort", tooltip="abort the job (asks first)", id="queues.abort"),
        Binding("x", "delete", "delete", tooltip="delete the job (asks first)", id="queues.delete"),
        Binding(
            "R",
            "requeue_letters",
            "dead letters",
            show=False,
            tooltip="requeue all dead letters of this queue's kind (asks first)",
            id="queues.requeue_letters",
        ),
        Binding(
            "slash",
            "filter",
            "filter",
            key_display="/",
            tooltip="filter this page",
            id="queues.filter",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.queue = data_ops.QUEUES[0]
        self.page_offset = 0
        self.finished = False
        self.view: QueuesView | None = None
        self.jobs: tuple[JobSummary, ...] = ()
        self.shown: list[JobSummary] = []
        self.page_size = data_ops.PAGE_SIZE
        self._args_width = ARGS_MIN_WIDTH

    def compose_body(self) -> ComposeResult:
        yield Static(" ", id="queue-tabs")
        yield VirtualTable(COLUMNS, self._cells, job_key, id="jobs")
        yield Static(" ", id="detail")
        yield FilterBar("filter this page by id, function, args or state…")

    def _cells(self, job: JobSummary) -> tuple[Text | str, ...]:
        return job_cells(job, self.deck.settings.redis_prefix)

    def on_resize(self) -> None:
        # Wide terminals (200 columns over SSH) give the arguments the room left over.
        others = sum(column.width + 2 for column in COLUMNS if column.key != "args")
        args_width = max(ARGS_MIN_WIDTH, self.size.width - others - 4)
        if args_width != self._args_width:
            self._args_width = args_width
            self.table.set_columns(
                [replace(c, width=args_width) if c.key == "args" else c for c in COLUMNS]
            )

    @property
    def table(self) -> VirtualTable[JobSummary]:
        return self.query_one("#jobs", VirtualTable)

    @property
    def filter_text(self) -> str:
        return self.query_one(FilterBar).value.strip().lower()

    async def fetch(self) -> QueuesView:
        redis = await self.deck.queue_pool()
        return await data_ops.load_queues(
            redis,
            self.deck.settings,
            self.queue,
            self.page_offset,
            self.finished,
            self.page_size,
            self.deck.now(),
        )

    def show(self, data: QueuesView) -> None:
        if data.queue != self.queue or data.finished != self.finished:
            return  # the operator switched while this load ran; the next load is on its way
        self.view = data
        if data.page is not None:
            self.page_offset = data.page.offset
            self.jobs = data.page.jobs
        else:
            self.jobs = data.done
        self._render_tabs()
        self._render_table()

    def _render_tabs(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, counts in enumerate(self.view.counts if self.view else ()):
            current = counts.queue == self.queue
            line.append(f" {i + 1} {counts.queue} ", style="bold reverse" if current else "")
            running = f"{counts.running}" + ("" if counts.running_exact else "+")
            line.append(
                f"{counts.ready}/{counts.deferred}/{running} ", style="" if current else "dim"
            )
        line.append(" ready/deferred/running", style="dim")
        self.query_one("#queue-tabs", Static).update(line)

    def _render_table(self) -> None:
        needle = self.filter_text
        shown = [
            job
            for job in self.jobs
            if not needle
            or any(
                needle in text.lower()
                for text in (job.job_id, job.function, job.args, job.state.value)
            )
        ]
        if shown != self.shown or self.table.row_count != len(shown):
            # The page as it is: a VirtualTable paints only the rows on screen (Textual's
            # DataTable rebuilt and re-measured all 100 rows here: ~60-80 ms on the UI loop).
            self.shown = shown
            self.table.set_rows(shown)
        self._show_detail()
        self.set_status(self._status_text())

    def _status_text(self) -> str:
        view = self.view
        if view is None:
            return "loading…"
        if view.finished:
            more = " (scan continues: more may exist)" if view.scan_cursor else ""
            text = f"{self.queue}: {len(self.jobs)} finished jobs (results kept 1 h){more}"
        else:
            assert view.page is not None
            total = view.page.counts.total
            first = view.page.offset + 1 if self.jobs else 0
            text = (
                f"{self.queue}: jobs {first}-{view.page.offset + len(self.jobs)} of {total}"
                " · n/p page"
            )
        if self.filter_text:
            text += f" · filter [b]{escape(self.filter_text)}[/] ({len(self.shown)})"
        return text + f" · updated {self.deck.now():%H:%M:%S}"

    def selected(self) -> JobSummary | None:
        return self.table.row_at_cursor()

    @on(VirtualTable.RowHighlighted)
    def _show_detail(self) -> None:
        job = self.selected()
        detail = self.query_one("#detail", Static)
        if job is None:
            what = "finished jobs" if self.finished else "queued jobs"
            detail.update(f"no {what} in {self.queue}" + (" match" if self.filter_text else ""))
            return
        job_id = short_id(job.job_id, self.deck.settings.redis_prefix)
        detail.update(
            f"[b]{escape(job_id)}[/] {job.state.value} · try {job.tries} · "
            f"{escape(job.function)}({escape(job.args)})"
        )

    # Navigation.

    def _switch(self, queue: str | None = None, finished: bool | None = None) -> None:
        if queue is not None:
            self.queue = queue
        if finished is not None:
            self.finished = finished
        self.page_offset = 0
        self.jobs = ()
        self.table.move_cursor(row=0)
        self._render_table()
        self.request_reload()

    def set_argument(self, argument: str | None) -> None:
        """`:queues fetch` opens that queue."""
        if argument:
            if argument in data_ops.QUEUES:
                self._switch(queue=argument)
            else:
                self.notify(f"no queue {argument!r}: {', '.join(data_ops.QUEUES)}")

    def action_pick(self, index: int) -> None:
        self._switch(queue=data_ops.QUEUES[index])

    def action_next_queue(self) -> None:
        index = data_ops.QUEUES.index(self.queue)
        self._switch(queue=data_ops.QUEUES[(index + 1) % len(data_ops.QUEUES)])

    def action_toggle_view(self) -> None:
        self._switch(finished=not self.finished)
        self.notify("finished jobs" if self.finished else "queued jobs", timeout=1.5)

    def action_page(self, step: int) -> None:
        if self.finished or self.view is None or self.view.page is None:
            return
        total = self.view.page.counts.total
        offset = self.page_offset + step * self.page_size
        if offset < 0 or offset >= total:
            self.notify("no more pages that way", timeout=1.5)
            return
        self.page_offset = offset
        self.table.move_cursor(row=0)  # a new page starts at its top
        self.request_reload()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(FilterBar.Changed)
    def _filter_changed(self) -> None:
        self._render_table()

    # Detail and admin actions (each in a worker: Redis calls never block the UI).

    @on(VirtualTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        job = self.selected()
        if job is None:
            self.notify("no job selected", severity="warning")
            return
        self._open_detail(job.queue, job.job_id)

    @work(group="queue-detail", exclusive=True, exit_on_error=False)
    async def _open_detail(self, queue: str, job_id: str) -> None:
        try:
            redis = await self.deck.queue_pool()
            detail = await data_ops.job_detail(
                redis, self.deck.settings, queue, job_id, self.deck.now()
            )
        except KNOWN_ERRORS as exc:
            self.notify(f"cannot open {job_id}: {exc}", severity="error")
            return
        self.app.push_screen(JobDetailModal(detail))

    def _target(self, verb: str) -> JobSummary | None:
        if self.deck.refuse_read_only(verb):
            return None
        job = self.selected()
        if job is None:
            self.notify(f"no job to {verb}", severity="warning")
        return job

    def action_retry(self) -> None:
        job = self._target("retry")
        if job is not None:
            self._admin("retry", job)

    def action_abort(self) -> None:
        job = self._target("abort")
        if job is not None:
            self.confirm(
                f"Abort job [b]{escape(job.job_id)}[/]?", lambda: self._admin("abort", job)
            )

    def action_delete(self) -> None:
        job = self._target("delete")
        if job is not None:
            self.confirm(
                f"Delete job [b]{escape(job.job_id)}[/]? Its work will not run.",
                lambda: self._admin("delete", job),
            )

    @work(group="edit", exit_on_error=False)
    async def _admin(self, verb: str, job: JobSummary) -> None:
        async def write() -> str:
            redis = await self.deck.queue_pool()
            return await data_ops.job_action(
                redis, self.deck.settings, verb, job.queue, job.job_id, self.deck.now()
            )

        await self.run_edit(
            write(), failed=f"not {verb}", done=lambda outcome: f"{job.job_id}: {outcome}"
        )

    def action_requeue_letters(self) -> None:
        if self.deck.refuse_read_only("requeue dead letters"):
            return
        kind = data_ops.DEAD_LETTER_KIND.get(self.queue)
        if kind is None:
            self.notify(f"the {self.queue} queue has no dead letters", severity="warning")
            return
        self.confirm(f"Requeue [b]all pending {kind}[/] dead letters?", lambda: self._requeue(kind))

    @work(group="edit", exit_on_error=False)
    async def _requeue(self, kind: str) -> None:
        async def write() -> int:
            redis = await self.deck.queue_pool()
            return await data_ops.requeue_dead_letters(
                self.deck.db, redis, self.deck.settings, kind, current_actor()
            )

        await self.run_edit(
            write(), failed="not requeued", done=lambda n: f"{n} {kind} dead letter(s) requeued"
        )
