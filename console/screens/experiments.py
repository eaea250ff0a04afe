"""Experiments: status, traffic, SRM flag and leader; a detail view per experiment; edits.

Keys: `s` start, `p` pause/resume, `x` stop (asks first), `w` change weights (validated to sum
to 1), `a` add a variant (draft only), `enter` the detail view (variant statistics and funnel
steps per variant). Numbers come from the rollup tables over `WINDOW_DAYS` (statistics are
computed by the read model, console.data.experiments, from the counts), traffic from the
stored assignments. Every edit is audited.
"""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from console.data import experiments as data
from console.data.experiments import WINDOW_DAYS, ExperimentRow, ExperimentStatus
from console.screens.experiment_modals import DASH, ExperimentDetail, VariantModal, WeightsModal
from console.screens.live import LiveScreen, row_at_cursor

# 80 columns: the key, status, traffic, split (weights in %), SRM and leader always show.
COLUMNS = (
    ("Key", "key", 16),
    ("Status", "status", 7),
    ("Traffic", "traffic", 7),
    ("Split %", "split", 9),
    ("SRM", "srm", 4),
    ("Leader", "leader", 10),
    ("Metric", "metric", 12),
)
STATUS_STYLE = {"running": "green", "paused": "yellow", "stopped": "dim", "draft": "cyan"}


def experiment_cells(row: ExperimentRow) -> tuple[Text | str, ...]:
    split = "/".join(f"{w * 100:.0f}" for _, w in row.variants)
    if row.computed is None:
        srm = Text(DASH, style="dim")
        leader = Text("no rollup", style="dim")
    else:
        srm = Text("SRM!", style="bold red") if row.srm_flagged else Text("ok", style="green")
        if row.computed.leader is None:
            leader = Text(DASH if row.srm_flagged else "too early", style="dim")
        else:
            leader = Text(row.computed.leader, style="bold")
    return (
        Text(row.key, style="bold"),
        Text(row.status, style=STATUS_STYLE.get(row.status, "")),
        f"{row.traffic:,}",
        split,
        srm,
        leader,
        row.primary_metric,
    )


class ExperimentsScreen(LiveScreen):
    TITLE = "Experiments"
    refresh_s = 5.0

    BINDINGS: ClassVar = [
        Binding(
            "enter",
            "detail",
            "detail",
            tooltip="variants, statistics and funnels",
            id="experiments.detail",
        ),
        Binding(
            "s",
            "start",
            "start",
            tooltip="start a draft or resume a paused experiment",
            id="experiments.start",
        ),
        Binding(
            "p",
            "pause",
            "pause",
            tooltip="pause a running experiment / resume",
            id="experiments.pause",
        ),
        Binding("x", "stop", "stop", tooltip="stop for good (asks first)", id="experiments.stop"),
        Binding(
            "w",
            "weights",
            "weights",
            tooltip="change the weights (sum to 1)",
            id="experiments.weights",
        ),
        Binding(
            "a",
            "add_variant",
            "add variant",
            tooltip="add a variant (draft only)",
            id="experiments.add_variant",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ExperimentRow] = []

    def compose_body(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(
            id="experiments", cursor_type="row", zebra_stripes=True
        )
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table
        yield Static(" ", id="detail")

    async def fetch(self) -> data.ExperimentsView:
        return await data.load_experiments_view(self.deck.db)

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#experiments", DataTable)

    def show(self, view: data.ExperimentsView) -> None:
        selected = self.selected()
        self.rows = view.rows
        table = self.table
        table.clear()
        for row in view.rows:
            table.add_row(*experiment_cells(row), key=row.key)
        if selected is not None and selected.key in table.rows:
            table.move_cursor(row=table.get_row_index(selected.key), animate=False)
        text = f"{len(view.rows)} experiments, {view.running} running"
        if view.flagged:
            text += f", [b red]{view.flagged} with sample ratio mismatch[/]"
        self.set_status(f"{text} · {WINDOW_DAYS}-day rollups · updated {self.deck.now():%H:%M:%S}")
        self._show_detail()

    def selected(self) -> ExperimentRow | None:
        table = self.table
        return row_at_cursor(table, self.rows)

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#detail", Static)
        if row is None:
            detail.update("no experiments yet" if not self.rows else " ")
            return
        weights = ", ".join(f"{k} {w:g}" for k, w in row.variants)
        if row.computed is None:
            facts = "no rollup yet"
        else:
            srm = row.computed.srm
            facts = f"leader {row.computed.leader}" if row.computed.leader else "no leader yet"
            if srm is not None:
                facts += f" · SRM {'MISMATCH' if srm.flagged else 'ok'} (p={srm.p_value:.2g})"
            if row.computed.notes:
                facts += " · " + "; ".join(row.computed.notes)
        detail.update(
            f"[b]{escape(row.key)}[/] {escape(row.name)} · {escape(weights)} · {escape(facts)}"
        )

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(ExperimentDetail(row))

    # Edits: refuse in read-only mode, ask where needed, write in a worker, then reload.

    def _target(self, verb: str) -> ExperimentRow | None:
        if self.deck.refuse_read_only(verb):
            return None
        row = self.selected()
        if row is None:
            self.notify(f"no experiment to {verb}", severity="warning")
        return row

    def action_start(self) -> None:
        row = self._target("start")
        if row is not None:
            self._write_status(row.key, ExperimentStatus.RUNNING, row.version)

    def action_pause(self) -> None:
        row = self._target("pause")
        if row is not None:
            target = (
                ExperimentStatus.RUNNING
                if row.status == ExperimentStatus.PAUSED
                else ExperimentStatus.PAUSED
            )
            self._write_status(row.key, target, row.version)

    def action_stop(self) -> None:
        row = self._target("stop")
        if row is None:
            return

        self.confirm(
            f"Stop [b]{escape(row.key)}[/] for good? It serves no variant after.",
            lambda: self._write_status(row.key, ExperimentStatus.STOPPED, row.version),
        )

    @work(group="edit", exit_on_error=False)
    async def _write_status(self, key: str, status: ExperimentStatus, version: int) -> None:
        await self.run_edit(  # made against the version on screen: a stale one is refused
            data.set_experiment_status(self.deck.db, key, status, version),
            failed="not saved",
            done=lambda _: f"{key} is now {status.value}",
        )

    def action_weights(self) -> None:
        row = self._target("change weights")
        if row is None:
            return
        keys = [k for k, _ in row.variants]

        def save(value: str | None) -> None:
            if value is not None:
                self._write_weights(row.key, value, keys, row.version)

        self.app.push_screen(WeightsModal(row), save)

    @work(group="edit", exit_on_error=False)
    async def _write_weights(self, key: str, text: str, keys: list[str], version: int) -> None:
        def done(weights: dict[str, float]) -> str:
            return f"{key}: weights " + " ".join(f"{k}={w:g}" for k, w in weights.items())

        await self.run_edit(
            data.set_variant_weights(self.deck.db, key, text, keys, version),
            failed="weights not saved",
            done=done,
        )

    def action_add_variant(self) -> None:
        row = self._target("add a variant")
        if row is None:
            return
        if row.status != ExperimentStatus.DRAFT:
            self.notify(
                f"{row.key} is {row.status}: variants are added while draft", severity="warning"
            )
            return

        def save(value: str | None) -> None:
            if value is not None:
                self._write_variant(row.key, value.strip(), row.version)

        self.app.push_screen(VariantModal(row), save)

    @work(group="edit", exit_on_error=False)
    async def _write_variant(self, key: str, variant: str, version: int) -> None:
        await self.run_edit(
            data.add_variant(self.deck.db, key, variant, version),
            failed="variant not added",
            done=lambda _: f"{key}: variant {variant} added, weights split equally",
        )
