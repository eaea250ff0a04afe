"""Experiments: status, traffic, SRM flag and leader; a detail view per experiment; edits.

Keys: `s` start, `p` pause/resume, `x` stop (asks first), `w` change weights (validated to sum
to 1), `a` add a variant (draft only), `enter` the detail view (variant statistics and funnel
steps per variant). Numbers come from the rollup tables over `WINDOW_DAYS` (statistics are
computed here, from the counts), traffic from the stored assignments. Every edit is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from console.screens.dialogs import ConfirmModal
from console.screens.live import LiveScreen, row_at_cursor
from engine.experiments import stats
from storage.database import Database
from storage.models import ExperimentStatus
from storage.queries import audit
from storage.queries import experiments as q

WINDOW_DAYS = 14
DASH = "-"

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
SHORT_VERDICT = {
    stats.Verdict.NOT_ENOUGH_DATA: "too early",
    stats.Verdict.SRM: "SRM",
}


@dataclass(frozen=True, slots=True)
class FunnelLine:
    name: str
    steps: tuple[str, ...]
    by_variant: dict[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    key: str
    name: str
    status: str
    hypothesis: str
    primary_metric: str
    coverage: float
    traffic: int
    variants: tuple[tuple[str, float], ...]
    computed: stats.ExperimentStats | None
    window_end: str | None
    funnels: tuple[FunnelLine, ...] = field(default=())

    @property
    def srm_flagged(self) -> bool:
        return bool(self.computed and self.computed.srm and self.computed.srm.flagged)


async def load_experiments(db: Database, window_days: int = WINDOW_DAYS) -> list[ExperimentRow]:
    """The console's read model of experiments (storage.queries and engine.stats only)."""
    rows = []
    async with db.session() as session:
        experiments = await q.list_experiments(session)
        traffic = await q.experiment_traffic(session)
        funnel_rows = await q.read_funnels(session, window_days)
        for e in experiments:
            rollup = await q.read_experiment_rollup(session, e.id, window_days)
            computed = None
            if rollup:
                computed = stats.compare(
                    [
                        stats.VariantInput(r.variant_key, r.units, r.conversions, r.weight)
                        for r in rollup
                    ]
                )
            funnels: dict[str, dict[str, list[int]]] = {}
            names: dict[str, list[str]] = {}
            for f in funnel_rows:
                if f.experiment_key != e.key:
                    continue
                funnels.setdefault(f.funnel_name, {}).setdefault(f.variant_key, []).append(f.units)
                steps = names.setdefault(f.funnel_name, [])
                if len(steps) < f.step:
                    steps.append(f.step_name)
            rows.append(
                ExperimentRow(
                    key=e.key,
                    name=e.name,
                    status=e.status,
                    hypothesis=e.hypothesis,
                    primary_metric=e.primary_metric,
                    coverage=e.coverage,
                    traffic=traffic.get(e.id, 0),
                    variants=tuple((v.key, v.weight) for v in e.variants),
                    computed=computed,
                    window_end=rollup[0].window_end.isoformat() if rollup else None,
                    funnels=tuple(
                        FunnelLine(
                            name,
                            tuple(names[name]),
                            {k: tuple(v) for k, v in by_variant.items()},
                        )
                        for name, by_variant in funnels.items()
                    ),
                )
            )
    return rows


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


def parse_weights(text: str, keys: list[str]) -> dict[str, float]:
    """`control=0.3 v1=0.7` (or the numbers alone, in variant order) → weights summing to 1."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise q.ExperimentError(f"type {len(keys)} weights: " + " ".join(f"{k}=…" for k in keys))
    weights: dict[str, float] = {}
    try:
        if all("=" in p for p in parts):
            for part in parts:
                key, _, value = part.partition("=")
                if key not in keys:
                    raise q.ExperimentError(f"no variant {key!r} (variants: {', '.join(keys)})")
                weights[key] = float(value)
        elif len(parts) == len(keys):
            weights = {k: float(v) for k, v in zip(keys, parts, strict=True)}
        else:
            raise q.ExperimentError(f"give {len(keys)} weights, one per variant")
    except ValueError as exc:
        if isinstance(exc, q.ExperimentError):
            raise
        raise q.ExperimentError(f"not a number: {exc}") from exc
    missing = [k for k in keys if k not in weights]
    if missing:
        raise q.ExperimentError(f"missing weights for {', '.join(missing)}")
    q.check_weights(list(weights.values()))
    return weights


class PromptModal(ModalScreen[str | None]):
    """One line of input, checked as you type by `check` (returns an error or None)."""

    BINDINGS: ClassVar = [Binding("escape", "cancel", "cancel", id="prompt.cancel")]

    def __init__(self, title: str, hint: str, value: str) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield Input(value=self.value, id="prompt")
            yield Label(self.hint, classes="hint")
            yield Label("", id="form-error")

    def validate(self, value: str) -> str | None:
        return None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        error = self.validate(event.value)
        self.query_one("#form-error", Label).update(escape(error) if error else "")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        error = self.validate(event.value)
        if error:
            self.query_one("#form-error", Label).update(escape(error))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class WeightsModal(PromptModal):
    def __init__(self, row: ExperimentRow) -> None:
        current = " ".join(f"{k}={w:g}" for k, w in row.variants)
        super().__init__(
            f"Weights of [b]{escape(row.key)}[/] (they sum to 1)",
            "[b]enter[/] save  [b]esc[/] cancel · assigned units keep their variant",
            current,
        )
        self.keys = [k for k, _ in row.variants]

    def validate(self, value: str) -> str | None:
        try:
            parse_weights(value, self.keys)
        except q.ExperimentError as exc:
            return str(exc)
        return None


class VariantModal(PromptModal):
    def __init__(self, row: ExperimentRow) -> None:
        super().__init__(
            f"New variant of [b]{escape(row.key)}[/] (weights become an equal split)",
            "[b]enter[/] add   [b]esc[/] cancel   key: letters, digits, _ . : -",
            "",
        )
        self.keys = {k for k, _ in row.variants}

    def validate(self, value: str) -> str | None:
        key = value.strip()
        try:
            q.VariantInput(key=key, weight=0)
        except ValueError:
            return "a key is 1-100 letters, digits, _ . : - (starting with a letter or digit)"
        if key in self.keys:
            return f"{key} exists already"
        return None


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


class ExperimentDetail(ModalScreen[None]):
    """The variant table (with statistics) and the funnel steps per variant."""

    BINDINGS: ClassVar = [
        Binding("escape", "close", "close", id="experiment_detail.close"),
        Binding("q", "close", "close", id="experiment_detail.close"),
    ]

    def __init__(self, row: ExperimentRow) -> None:
        super().__init__()
        self.row = row

    def compose(self) -> ComposeResult:
        row = self.row
        with Vertical(classes="dialog", id="experiment-detail"):
            yield Label(
                f"[b]{escape(row.key)}[/] · {row.status} · metric "
                f"[b]{escape(row.primary_metric)}[/] · {row.traffic:,} units · "
                f"coverage {row.coverage:g}"
            )
            if row.hypothesis:
                yield Label(f"[i]{escape(row.hypothesis)}[/]")
            table: DataTable[str | Text] = DataTable(id="variants", cursor_type="row")
            table.styles.height = "auto"
            table.styles.max_height = 8
            for label in (
                "Variant",
                "Verdict",
                "Units",
                "Conv",
                "Rate",
                "Uplift",
                "95% CI",
                "P>ctl",
            ):
                table.add_column(label)
            yield table
            yield Static(self._summary(), id="experiment-notes")
            yield Static(self._funnels(), id="experiment-funnels")
            yield Label("[b]esc[/] close", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one("#variants", DataTable)
        computed = self.row.computed
        if computed is None:
            for key, _ in self.row.variants:
                table.add_row(key, "no rollup", DASH, DASH, DASH, DASH, DASH, DASH)
            return
        for v in computed.variants:
            ci = f"{_pct(v.abs_ci[0], True)}..{_pct(v.abs_ci[1], True)}" if v.abs_ci else DASH
            beat = (
                f"{v.chance_to_beat_control * 100:.0f}%"
                if v.chance_to_beat_control is not None
                else DASH
            )
            table.add_row(
                v.key,
                SHORT_VERDICT.get(v.verdict, v.verdict.value),
                f"{v.units:,}",
                f"{v.conversions:,}",
                _pct(v.rate),
                _pct(v.abs_uplift, True),
                ci,
                beat,
            )

    def _summary(self) -> str:
        computed = self.row.computed
        if computed is None:
            return f"no rollup over {WINDOW_DAYS} days yet: `creatordeck rollup`"
        parts = [f"window ends {self.row.window_end} ({WINDOW_DAYS} d)"]
        if computed.srm is not None:
            flag = "[b red]MISMATCH[/]" if computed.srm.flagged else "[green]ok[/]"
            parts.append(f"SRM {flag} (p={computed.srm.p_value:.3g})")
        parts.append(f"leader [b]{computed.leader}[/]" if computed.leader else "no leader yet")
        return " · ".join(parts) + "".join(f"\n{escape(n)}" for n in computed.notes)

    def _funnels(self) -> str:
        if not self.row.funnels:
            return "no funnels"
        lines = []
        for funnel in self.row.funnels:
            lines.append(f"[b]funnel {escape(funnel.name)}[/]: " + " → ".join(funnel.steps))
            for variant, counts in funnel.by_variant.items():
                first = counts[0] if counts else 0
                cells = [
                    f"{c:,}" + (f" ({c / first:.0%})" if first and i else "")
                    for i, c in enumerate(counts)
                ]
                lines.append(f"  {escape(variant):<10} " + " → ".join(cells))
        return "\n".join(lines)

    def action_close(self) -> None:
        self.dismiss(None)


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

    async def fetch(self) -> list[ExperimentRow]:
        return await load_experiments(self.deck.db)

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#experiments", DataTable)

    def show(self, data: list[ExperimentRow]) -> None:
        selected = self.selected()
        self.rows = data
        table = self.table
        table.clear()
        for row in data:
            table.add_row(*experiment_cells(row), key=row.key)
        if selected is not None and selected.key in table.rows:
            table.move_cursor(row=table.get_row_index(selected.key), animate=False)
        running = sum(1 for r in data if r.status == ExperimentStatus.RUNNING)
        flagged = sum(1 for r in data if r.srm_flagged)
        text = f"{len(data)} experiments, {running} running"
        if flagged:
            text += f", [b red]{flagged} with sample ratio mismatch[/]"
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
            self._write_status(row.key, ExperimentStatus.RUNNING)

    def action_pause(self) -> None:
        row = self._target("pause")
        if row is not None:
            target = (
                ExperimentStatus.RUNNING
                if row.status == ExperimentStatus.PAUSED
                else ExperimentStatus.PAUSED
            )
            self._write_status(row.key, target)

    def action_stop(self) -> None:
        row = self._target("stop")
        if row is None:
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._write_status(row.key, ExperimentStatus.STOPPED)

        self.app.push_screen(
            ConfirmModal(f"Stop [b]{escape(row.key)}[/] for good? It serves no variant after."),
            answer,
        )

    @work(group="edit", exit_on_error=False)
    async def _write_status(self, key: str, status: ExperimentStatus) -> None:
        try:
            async with self.deck.db.session() as session, session.begin():
                await q.set_status(session, key, status, actor=audit.current_actor())
        except q.ExperimentError as exc:
            self.notify(str(exc), severity="error")
        except Exception as exc:
            self.notify(f"not saved: {type(exc).__name__}: {exc}", severity="error")
        else:
            self.notify(f"{key} is now {status.value}")
        self.request_reload()

    def action_weights(self) -> None:
        row = self._target("change weights")
        if row is None:
            return
        keys = [k for k, _ in row.variants]

        def save(value: str | None) -> None:
            if value is not None:
                self._write_weights(row.key, parse_weights(value, keys))

        self.app.push_screen(WeightsModal(row), save)

    @work(group="edit", exit_on_error=False)
    async def _write_weights(self, key: str, weights: dict[str, float]) -> None:
        try:
            async with self.deck.db.session() as session, session.begin():
                await q.set_weights(session, key, weights, actor=audit.current_actor())
        except Exception as exc:
            self.notify(f"weights not saved: {exc}", severity="error")
        else:
            shown = " ".join(f"{k}={w:g}" for k, w in weights.items())
            self.notify(f"{key}: weights {shown}")
        self.request_reload()

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
                self._write_variant(row.key, value.strip())

        self.app.push_screen(VariantModal(row), save)

    @work(group="edit", exit_on_error=False)
    async def _write_variant(self, key: str, variant: str) -> None:
        try:
            async with self.deck.db.session() as session, session.begin():
                await q.add_variant(session, key, variant, actor=audit.current_actor())
        except Exception as exc:
            self.notify(f"variant not added: {exc}", severity="error")
        else:
            self.notify(f"{key}: variant {variant} added, weights split equally")
        self.request_reload()
