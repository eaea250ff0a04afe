"""The Experiments screen's dialogs: weights and a new variant (validated as typed), and an
experiment's detail with variant statistics and funnels."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from console.data.experiments import (
    WINDOW_DAYS,
    ExperimentError,
    ExperimentRow,
    VariantInput,
    Verdict,
    parse_weights,
)

DASH = "-"
SHORT_VERDICT = {
    Verdict.NOT_ENOUGH_DATA: "too early",
    Verdict.SRM: "SRM",
}


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

    def _say(self, error: str | None) -> None:
        """Show the error, or nothing: no blank lines kept for an error there is not."""
        label = self.query_one("#form-error", Label)
        label.update(escape(error) if error else "")
        label.display = bool(error)

    def on_mount(self) -> None:
        self._say(None)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._say(self.validate(event.value))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        error = self.validate(event.value)
        if error:
            self._say(error)
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
        except ExperimentError as exc:
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
            VariantInput(key=key, weight=0)
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
