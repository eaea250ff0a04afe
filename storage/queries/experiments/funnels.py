"""Funnel rollups: per variant, how many units reached each step in order, over a window.

The counts are summed from the per-unit progress of `funnel_units` (never from raw events) and
written only where they change; `stored_funnels` tells which funnels' state belongs to the
window being computed (same end, same steps), so that only those are patched by unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.queries.experiments.rollups import RollupExperiment, Window

# The counts come from the per-unit state (funnel_units.py), summed per variant and step.
_FUNNEL_WRITE_SQL = """
WITH counted AS (
    SELECT * FROM unnest(CAST(:counted_variants AS text[]), CAST(:counted_steps AS integer[]),
                         CAST(:counted_units AS bigint[])) AS c(variant_key, step, units)
), grid AS (
    SELECT k.variant_key, s.step, s.step_name
    FROM unnest(CAST(:variants AS text[])) AS k(variant_key)
    CROSS JOIN unnest(CAST(:steps AS text[])) WITH ORDINALITY AS s(step_name, step)
), fresh AS (
    SELECT CAST(:days AS integer) AS window_days, CAST(:id AS bigint) AS experiment_id,
           CAST(:funnel AS text) AS funnel_name, g.variant_key,
           CAST(g.step AS integer) AS step, CAST(:window_end AS date) AS window_end,
           g.step_name, COALESCE(c.units, 0) AS units
    FROM grid g LEFT JOIN counted c ON c.variant_key = g.variant_key AND c.step = g.step
), up AS (
    INSERT INTO rollup_funnel AS r
        (window_days, experiment_id, funnel_name, variant_key, step, window_end,
         step_name, units)
    SELECT * FROM fresh
    ON CONFLICT (window_days, experiment_id, funnel_name, variant_key, step) DO UPDATE
        SET window_end = EXCLUDED.window_end, step_name = EXCLUDED.step_name,
            units = EXCLUDED.units
        WHERE (r.window_end, r.step_name, r.units) IS DISTINCT FROM
              (EXCLUDED.window_end, EXCLUDED.step_name, EXCLUDED.units)
    RETURNING 1
), gone AS (
    DELETE FROM rollup_funnel r
    WHERE r.window_days = :days AND r.experiment_id = :id AND r.funnel_name = :funnel
      AND NOT EXISTS (
          SELECT 1 FROM fresh f
          WHERE f.variant_key = r.variant_key AND f.step = r.step
      )
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS n
"""


async def stored_funnels(
    session: AsyncSession, window_days: int
) -> dict[tuple[int, str], tuple[date, tuple[str, ...]]]:
    """Per (experiment, funnel) of the window: the end and the step names its rows were
    computed for (a funnel whose state belongs to another window end must be rebuilt)."""
    rows = await session.execute(
        text(
            "SELECT experiment_id, funnel_name, min(window_end) AS lo, max(window_end) AS hi, "
            "array_agg(DISTINCT step::text || ':' || step_name) AS steps "
            "FROM rollup_funnel WHERE window_days = :days GROUP BY 1, 2"
        ),
        {"days": window_days},
    )
    out: dict[tuple[int, str], tuple[date, tuple[str, ...]]] = {}
    for r in rows:
        named = sorted((int(s.split(":", 1)[0]), s.split(":", 1)[1]) for s in r.steps)
        # Rows of two ends, or a step numbered twice, match no definition: rebuilt.
        steps = (
            tuple(n for _, n in named)
            if [k for k, _ in named] == list(range(1, len(named) + 1))
            else ()
        )
        out[(r.experiment_id, r.funnel_name)] = (r.lo if r.lo == r.hi else date.min, steps)
    return out


async def stored_counts(
    session: AsyncSession, window_days: int, experiment_ids: Sequence[int]
) -> dict[tuple[int, str], dict[tuple[str, int], int]]:
    """Per (experiment, funnel): the units per (variant, step) as stored."""
    rows = await session.execute(
        text(
            "SELECT experiment_id, funnel_name, variant_key, step, units FROM rollup_funnel "
            "WHERE window_days = :days AND experiment_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"days": window_days, "ids": list(experiment_ids)},
    )
    out: dict[tuple[int, str], dict[tuple[str, int], int]] = {}
    for r in rows:
        out.setdefault((r.experiment_id, r.funnel_name), {})[(r.variant_key, r.step)] = int(r.units)
    return out


async def write_funnel(
    session: AsyncSession,
    exp: RollupExperiment,
    funnel: str,
    steps: Sequence[str],
    window: Window,
    units: dict[tuple[str, int], int],
) -> int:
    """Write one funnel's rows from the units per (variant, step): the units that reached the
    step or further. Returns rows inserted, changed or deleted."""
    counted = [(v, k, n) for (v, k), n in units.items()]
    params: dict[str, Any] = {
        "id": exp.id,
        "funnel": funnel,
        "steps": list(steps),
        "variants": list(exp.variant_keys),
        "days": window.days,
        "window_end": window.end,
    }
    result = await session.execute(
        text(_FUNNEL_WRITE_SQL),
        {
            **params,
            "counted_variants": [c[0] for c in counted],
            "counted_steps": [c[1] for c in counted],
            "counted_units": [c[2] for c in counted],
        },
    )
    return int(result.scalar_one())


async def prune_funnels(session: AsyncSession, window_days: int) -> int:
    """Drop funnel rows of funnels that no longer exist (renamed or removed)."""
    result = await session.execute(
        text(
            "DELETE FROM rollup_funnel r WHERE r.window_days = :days AND NOT EXISTS ("
            "SELECT 1 FROM experiment_funnel f WHERE f.experiment_id = r.experiment_id "
            "AND f.name = r.funnel_name)"
        ),
        {"days": window_days},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
