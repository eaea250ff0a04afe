"""Migrations 0016 and 0017: the per-unit funnel state table, bytewise keys, its slimming to
the chain times, and back down."""

from __future__ import annotations

import asyncio

import asyncpg

import migrations
from storage.database import plain_dsn
from tests.conftest import _outside_loop


async def _collations(url: str) -> dict[str, str | None]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_name = 'rollup_funnel_unit'"
        )
    finally:
        await conn.close()
    return {r["column_name"]: r["collation_name"] for r in rows}


def test_upgrade_creates_the_state_table_and_downgrade_drops_it(scratch_url: str) -> None:
    _outside_loop(lambda: migrations.upgrade(scratch_url, "0016_rollup_funnel_units"))
    columns: dict[str, str | None] = {}
    _outside_loop(lambda: columns.update(asyncio.run(_collations(scratch_url))))
    assert set(columns) == {
        "window_days",
        "experiment_id",
        "funnel_name",
        "unit_id",
        "variant_key",
        "reached",
        "steps",
        "times",
        "reached_at",
    }
    assert columns["unit_id"] == columns["variant_key"] == "C"
    _outside_loop(lambda: migrations.downgrade(scratch_url, "0015_post_experiment_versions"))
    after: dict[str, str | None] = {}
    _outside_loop(lambda: after.update(asyncio.run(_collations(scratch_url))))
    assert after == {}


async def _seed_state(url: str) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        exp = await conn.fetchval(
            "INSERT INTO experiment (key, name, status, primary_metric) "
            "VALUES ('slim', 'Slim', 'running', 'buy') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO rollup_funnel_unit (window_days, experiment_id, funnel_name, unit_id, "
            "variant_key, reached, steps, times, reached_at) VALUES (7, $1, 'f', 'u1', 'v1', 2, "
            "'{1,2,3}', ARRAY[now() - interval '2 hours', now() - interval '1 hour', now()], "
            "ARRAY[now() - interval '2 hours', now() - interval '1 hour'])",
            exp,
        )
        # A unit with a later step's event but no step 1: 0016 kept a row, 0017 keeps none.
        await conn.execute(
            "INSERT INTO rollup_funnel_unit (window_days, experiment_id, funnel_name, unit_id, "
            "variant_key, reached, steps, times, reached_at) VALUES (7, $1, 'f', 'u2', 'v1', 0, "
            "'{2}', ARRAY[now()], '{}')",
            exp,
        )
        await conn.execute(
            "INSERT INTO rollup_funnel (window_days, experiment_id, funnel_name, variant_key, "
            "step, window_end, step_name, units) VALUES (7, $1, 'f', 'v1', 1, current_date, "
            "'open', 1)",
            exp,
        )
    finally:
        await conn.close()


async def _persistence(url: str) -> str:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return str(
            await conn.fetchval(
                "SELECT relpersistence::text FROM pg_class WHERE relname = 'rollup_funnel_stage'"
            )
        )
    finally:
        await conn.close()


async def _state(url: str) -> list[tuple[int, int]]:
    """(reached, chain times) per state row, then (-1, funnel count rows)."""
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        rows = await conn.fetch("SELECT reached, cardinality(reached_at) FROM rollup_funnel_unit")
        counts = await conn.fetchval("SELECT count(*) FROM rollup_funnel")
    finally:
        await conn.close()
    return [(r[0], r[1]) for r in rows] + [(-1, counts)]


def test_0017_keeps_the_chain_times_and_its_downgrade_empties_the_derived_state(
    scratch_url: str,
) -> None:
    """The slim state keeps every row's progress; going back to 0016 (whose code needs every
    step time) empties the state and the counts, which the next run rebuilds."""
    _outside_loop(lambda: migrations.upgrade(scratch_url, "0016_rollup_funnel_units"))
    _outside_loop(lambda: asyncio.run(_seed_state(scratch_url)))
    _outside_loop(lambda: migrations.upgrade(scratch_url, "0017_slim_funnel_units"))
    columns: dict[str, str | None] = {}
    _outside_loop(lambda: columns.update(asyncio.run(_collations(scratch_url))))
    assert "steps" not in columns and "times" not in columns
    persistence: list[str] = []
    _outside_loop(lambda: persistence.append(asyncio.run(_persistence(scratch_url))))
    assert persistence == ["u"]  # the stage is unlogged
    state: list[tuple[int, int]] = []
    _outside_loop(lambda: state.extend(asyncio.run(_state(scratch_url))))
    assert state == [(2, 2), (-1, 1)]

    _outside_loop(lambda: migrations.downgrade(scratch_url, "0016_rollup_funnel_units"))
    back: dict[str, str | None] = {}
    _outside_loop(lambda: back.update(asyncio.run(_collations(scratch_url))))
    assert {"steps", "times"} <= set(back)
    after: list[tuple[int, int]] = []
    _outside_loop(lambda: after.extend(asyncio.run(_state(scratch_url))))
    assert after == [(-1, 0)]
    _outside_loop(lambda: migrations.downgrade(scratch_url, "0015_post_experiment_versions"))
