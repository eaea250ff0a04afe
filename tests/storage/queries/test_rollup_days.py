"""Experiment rollups by touched day: a late event recomputes its day only, the figures come
from day-grained state, and incremental equals a full recomputation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, text

from engine.experiments.rollups import Job, run_rollups, window_for
from engine.maths.stats import ExperimentStats, VariantInput, compare
from storage.database import Database
from storage.models import Experiment, ExperimentRollup
from tests.support.experiments import api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]


async def _figures(db: Database) -> dict[str, tuple[int, int, int]]:
    async with db.session() as session:
        rows = await session.scalars(
            select(ExperimentRollup).where(ExperimentRollup.window_days == 7)
        )
        return {r.variant_key: (r.units, r.conversions, r.events) for r in rows}


async def _received_earlier(db: Database) -> None:
    """What is stored so far arrived well before the next run's watermark grace."""
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE event_log SET received_at = received_at - interval '1 hour'")
        )


async def test_a_late_event_recomputes_its_day_only(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "late")
    now = datetime.now(UTC)
    units = [f"d{i}" for i in range(12)]
    for unit in units:
        assert (await client.post("/v1/assignment", json={"unit_id": unit})).status_code == 200
    # Every unit converts twice, one and two days ago.
    batch = [event(u, "purchase", now - timedelta(days=d)) for u in units for d in (1, 2)]
    assert (await client.post("/v1/events", json={"events": batch})).json()["stored"] == 24
    await _received_earlier(db)
    window = window_for(7, now.date())
    await run_rollups(db, window, [Job.EXPERIMENTS])
    before = await _figures(db)
    assert sum(c for _, c, _ in before.values()) == 12
    assert sum(e for _, _, e in before.values()) == 24

    # Raw events of an untouched day vanish behind the rollup's back: an incremental run does
    # not read that day again, so the figures keep them (a whole-window recompute would not).
    async with db.transaction() as session:
        await session.execute(
            text("DELETE FROM event_log WHERE occurred_at < :t"),
            {"t": now - timedelta(days=1, hours=12)},
        )
    # A late purchase five days ago by d0 (whose first conversion moves earlier) and one by a
    # unit that never converted.
    await client.post("/v1/assignment", json={"unit_id": "fresh"})
    late = [
        event("d0", "purchase", now - timedelta(days=5)),
        event("fresh", "purchase", now - timedelta(days=5)),
    ]
    assert (await client.post("/v1/events", json={"events": late})).json()["stored"] == 2

    incremental = await run_rollups(db, window, [Job.EXPERIMENTS], incremental=True)

    [result] = incremental.results
    assert result.incremental and result.units_of_work == 1  # one experiment, one day
    after = await _figures(db)
    assert sum(u for u, _, _ in after.values()) == 13
    assert sum(c for _, c, _ in after.values()) == 13
    assert sum(e for _, _, e in after.values()) == 26


async def test_incremental_equals_full(client: httpx.AsyncClient, db: Database) -> None:
    await make_experiment(db, "same")
    now = datetime.now(UTC)
    for i in range(20):
        await client.post("/v1/assignment", json={"unit_id": f"s{i}"})
    first = [event(f"s{i}", "purchase", now - timedelta(days=i % 4)) for i in range(0, 20, 2)]
    await client.post("/v1/events", json={"events": first})
    window = window_for(7, now.date())
    await run_rollups(db, window, [Job.EXPERIMENTS])
    late = [event(f"s{i}", "purchase", now - timedelta(days=6)) for i in range(0, 20, 3)]
    await client.post("/v1/events", json={"events": late})
    await run_rollups(db, window, [Job.EXPERIMENTS], incremental=True)
    incremental = await _figures(db)
    full = await run_rollups(db, window, [Job.EXPERIMENTS])
    assert full.results[0].rows_written == 0  # the full run finds nothing to change
    assert await _figures(db) == incremental


_RAW_SQL = """
SELECT s.variant_key, count(DISTINCT s.unit_id) AS units,
       count(DISTINCT e.unit_id) AS conversions, count(e.event_id) AS events
FROM assignment s JOIN experiment x ON x.id = s.experiment_id
LEFT JOIN event_log e ON e.unit_id = s.unit_id AND e.name = x.primary_metric
     AND e.assignments ? x.key AND e.occurred_at >= :start AND e.occurred_at < :end
WHERE x.key = :key AND s.assigned_at >= :start AND s.assigned_at < :end
GROUP BY s.variant_key
"""


async def _raw(
    db: Database, key: str, start: datetime, end: datetime
) -> dict[str, tuple[int, ...]]:
    """The figures straight from raw events: what the day-grained state must reproduce."""
    async with db.session() as session:
        rows = await session.execute(text(_RAW_SQL), {"key": key, "start": start, "end": end})
        return {r.variant_key: (r.units, r.conversions, r.events) for r in rows}


async def _stored(db: Database, key: str) -> dict[str, tuple[int, ...]]:
    async with db.session() as session:
        rows = await session.scalars(
            select(ExperimentRollup)
            .join(Experiment, Experiment.id == ExperimentRollup.experiment_id)
            .where(ExperimentRollup.window_days == 7, Experiment.key == key)
        )
        return {r.variant_key: (r.units, r.conversions, r.events) for r in rows}


def _stats(figures: dict[str, tuple[int, ...]]) -> ExperimentStats:
    return compare(
        [VariantInput(k, figures[k][0], figures[k][1], 0.5) for k in ("control", "v1")],
        min_units=1,
        min_conversions=1,
    )


async def test_statistics_from_daily_state_equal_those_from_raw_events(
    client: httpx.AsyncClient, db: Database
) -> None:
    # Two experiments with different metrics share one pass over the events.
    await make_experiment(db, "alpha", metric="purchase")
    await make_experiment(db, "beta", metric="signup")
    now = datetime.now(UTC)
    for i in range(40):
        await client.post("/v1/assignment", json={"unit_id": f"r{i}"})
    names = ("purchase", "signup", "app_open")
    batch = [
        event(f"r{i}", names[(i + d) % 3], now - timedelta(days=d))
        for i in range(40)
        for d in range(i % 5)
    ]
    await client.post("/v1/events", json={"events": batch})
    window = window_for(7, now.date())
    await run_rollups(db, window, [Job.EXPERIMENTS])
    await _received_earlier(db)
    # Late events: earlier first conversions, repeat conversions, units new to the metric.
    late = [event(f"r{i}", names[i % 2], now - timedelta(days=6 - i % 3)) for i in range(0, 40, 3)]
    await client.post("/v1/events", json={"events": late})
    result = await run_rollups(db, window, [Job.EXPERIMENTS], incremental=True)
    assert result.results[0].incremental

    for key in ("alpha", "beta"):
        raw = await _raw(db, key, window.start_ts, window.end_ts)
        stored = await _stored(db, key)
        assert stored == raw
        assert sum(c for _, c, _ in raw.values()) > 0
        assert _stats(stored) == _stats(raw)
