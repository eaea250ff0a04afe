"""The Experiments screen's read model: one row per experiment over the last `WINDOW_DAYS`,
with variant statistics computed from the rollup tables' counts (engine.maths.stats), and
the parsing of typed weights.

Cost: one read of the experiments with their variants, one of the rollup rows in the window,
and one of the funnels; statistics are computed in memory from those counts.

Edits (each one audited transaction; a refusal raises ExperimentError, a UserError):
`set_experiment_status`, `set_variant_weights`, `add_variant`. Each carries the version the
screen's row showed (ExperimentRow.version): one made against an experiment someone else changed
since is refused with ExperimentChanged, which says what it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.data.acting import acting
from engine.maths import stats
from engine.maths.stats import Verdict
from storage.database import Database
from storage.models import ExperimentStatus
from storage.queries import experiments as q
from storage.queries.experiments import ExperimentError, VariantInput

# Types the screens name (they import no storage module).
__all__ = ["ExperimentError", "ExperimentStatus", "VariantInput", "Verdict"]

WINDOW_DAYS = 14


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
    version: int = 1  # what an edit of this row is made against (a stale one is refused)

    @property
    def srm_flagged(self) -> bool:
        return bool(self.computed and self.computed.srm and self.computed.srm.flagged)


@dataclass(frozen=True, slots=True)
class ExperimentsView:
    rows: list[ExperimentRow]
    running: int  # experiments serving variants now
    flagged: int  # experiments whose split shows a sample ratio mismatch


async def load_experiments_view(db: Database, window_days: int = WINDOW_DAYS) -> ExperimentsView:
    """Every experiment's row, and the counts the screen's status line states."""
    rows = await load_experiments(db, window_days)
    return ExperimentsView(
        rows,
        running=sum(1 for r in rows if r.status == ExperimentStatus.RUNNING),
        flagged=sum(1 for r in rows if r.srm_flagged),
    )


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
                    version=e.version,
                )
            )
    return rows


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


# --- edits ---------------------------------------------------------------------------------


async def set_experiment_status(
    db: Database, key: str, status: ExperimentStatus, version: int | None = None
) -> None:
    async with db.transaction() as session:
        await q.set_status(session, key, status, actor=await acting(session), version=version)


async def set_variant_weights(
    db: Database, key: str, text: str, keys: list[str], version: int | None = None
) -> dict[str, float]:
    """Parse `text` (see parse_weights) and save the weights; returns them."""
    weights = parse_weights(text, keys)
    async with db.transaction() as session:
        await q.set_weights(session, key, weights, actor=await acting(session), version=version)
    return weights


async def add_variant(db: Database, key: str, variant: str, version: int | None = None) -> None:
    """A new variant of a draft experiment; the weights become an equal split."""
    async with db.transaction() as session:
        await q.add_variant(session, key, variant, actor=await acting(session), version=version)
