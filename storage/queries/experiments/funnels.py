"""Funnel rollups: per variant, how many units reached each step in order, over a window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.queries.experiments.rollups import RollupExperiment, Window

# The counts are read by a plain SELECT and written by a second statement: a statement that
# writes (an INSERT in a CTE) never runs in parallel, a SELECT scans the window with parallel
# workers when the planner finds it worth it (both cores of a quiet machine).
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


def _funnel_sql(steps: int) -> str:
    """Step k counts units whose first step-k event comes at or after their step k-1."""
    parts = [
        "WITH ev AS (SELECT unit_id, assignments ->> :key AS variant_key, name, occurred_at "
        "FROM event_log WHERE occurred_at >= :start AND occurred_at < :end "
        "AND assignments ? :key AND name = ANY(CAST(:steps AS text[])))",
        ", s1 AS (SELECT unit_id, variant_key, min(occurred_at) AS t FROM ev "
        "WHERE name = :step1 GROUP BY unit_id, variant_key)",
    ]
    for k in range(2, steps + 1):
        parts.append(
            f", s{k} AS (SELECT e.unit_id, e.variant_key, min(e.occurred_at) AS t FROM ev e "  # noqa: S608
            f"JOIN s{k - 1} p ON p.unit_id = e.unit_id AND p.variant_key = e.variant_key "
            f"WHERE e.name = :step{k} AND e.occurred_at >= p.t "
            "GROUP BY e.unit_id, e.variant_key)"
        )
    # Only step numbers are formatted in; every value is a bound parameter.
    parts.append(
        " UNION ALL ".join(
            f"SELECT variant_key, {k} AS step, count(*) AS units FROM s{k} GROUP BY variant_key"  # noqa: S608
            for k in range(1, steps + 1)
        )
    )
    return "\n".join(parts)


async def rollup_funnel(
    session: AsyncSession,
    exp: RollupExperiment,
    funnel: str,
    steps: Sequence[str],
    window: Window,
) -> int:
    params: dict[str, Any] = {
        "id": exp.id,
        "key": exp.key,
        "funnel": funnel,
        "steps": list(steps),
        "variants": list(exp.variant_keys),
        "days": window.days,
        "window_end": window.end,
        "start": window.start_ts,
        "end": window.end_ts,
    }
    steps_params = {f"step{k}": name for k, name in enumerate(steps, start=1)}
    counted = (
        await session.execute(text(_funnel_sql(len(steps))), {**params, **steps_params})
    ).all()
    result = await session.execute(
        text(_FUNNEL_WRITE_SQL),
        {
            **params,
            "counted_variants": [r.variant_key for r in counted],
            "counted_steps": [r.step for r in counted],
            "counted_units": [r.units for r in counted],
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
