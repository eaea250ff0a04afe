"""Migration 0016: the per-unit funnel state table, bytewise keys, and back down."""

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
