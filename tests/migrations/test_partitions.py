"""Migration 0007 on a populated database: every event and sample moves to its partition,
nothing lands in or stays in a DEFAULT, keys and dedupe still hold; and it downgrades back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg

import migrations
from storage import partitions as p
from storage.database import plain_dsn
from storage.queries.experiments import insert_events
from tests.conftest import _outside_loop

BEFORE = ("0002_creators", "0005_key_check", "0006_alert_silences")  # the heads before 0007


def _migrate(url: str, *targets: str, down: bool = False) -> None:
    for target in targets:
        if down:
            _outside_loop(lambda t=target: migrations.downgrade(url, t))  # type: ignore[misc]
        else:
            _outside_loop(lambda t=target: migrations.upgrade(url, t))  # type: ignore[misc]


async def _populate(conn: asyncpg.Connection, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO creator (platform, external_id, handle) "
        "SELECT 'mock', 'c' || i, 'c' || i FROM generate_series(1, 20) i"
    )
    # Samples over 14 months, twice a day; events over 40 days, 50 a day.
    await conn.execute(
        "INSERT INTO follower_sample (creator_id, observed_at, followers) "
        "SELECT c.id, $1::timestamptz - k * interval '12 hours', k FROM creator c, "
        "generate_series(0, 14 * 61) k",
        now,
    )
    await conn.execute(
        "INSERT INTO event_log (event_id, unit_id, name, occurred_at, client_ts, received_at, "
        "properties, assignments) SELECT gen_random_uuid(), 'u' || (k % 7), 'open', "
        "$1::timestamptz - k * interval '20 minutes', $1::timestamptz - k * interval '20 minutes', "
        "$1::timestamptz, '{}', '{}' FROM generate_series(0, 40 * 72) k",
        now,
    )


async def _check(url: str, now: datetime) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM follower_sample") == 20 * (14 * 61 + 1)
        assert await conn.fetchval("SELECT count(*) FROM event_log") == 40 * 72 + 1
        for table, column in (("event_log", "occurred_at"), ("follower_sample", "observed_at")):
            spec = p.EVENTS if table == "event_log" else p.SAMPLES
            rows = await conn.fetch(
                f"SELECT tableoid::regclass::text AS part, min({column}) AS lo, "
                f"max({column}) AS hi FROM {table} GROUP BY 1"
            )
            for r in rows:
                start = p.start_of(spec, r["part"])
                assert start is not None, f"{r['part']} holds rows"
                assert start <= r["lo"] and r["hi"] < p.following(spec, start)
            assert (
                await conn.fetchval(
                    "SELECT partstrat::text FROM pg_partitioned_table "
                    "WHERE partrelid = $1::regclass",
                    table,
                )
                == "r"
            )
        # Partitions exist ahead of time; a resent event is still stored once.
        ahead = p.name_of(p.EVENTS, p.floor(p.EVENTS, now + timedelta(days=p.EVENTS.ahead)))
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", ahead)
        event_id = await conn.fetchval("SELECT event_id::text FROM event_log LIMIT 1")
        batch = [
            {
                "event_id": event_id,
                "unit_id": "u",
                "name": "open",
                "ts": (now - timedelta(hours=1)).isoformat(),
                "properties": {},
            }
        ]
        occurred = await conn.fetchval(
            "SELECT occurred_at FROM event_log WHERE event_id = $1::uuid", event_id
        )
        batch[0]["ts"] = (occurred - timedelta(seconds=3)).isoformat()
        assert await insert_events(conn, json.dumps(batch), 0.0, now) == 0
        # Deleting a creator still cascades to its samples (the FK is on the partitioned table).
        await conn.execute("DELETE FROM creator WHERE external_id = 'c1'")
        assert await conn.fetchval("SELECT count(*) FROM follower_sample") == 19 * (14 * 61 + 1)
    finally:
        await conn.close()


def test_migration_partitions_a_populated_database(scratch_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _migrate(scratch_url, *BEFORE)

    async def populate() -> None:
        conn = await asyncpg.connect(plain_dsn(scratch_url))
        try:
            await _populate(conn, now)
        finally:
            await conn.close()

    asyncio.run(populate())
    _migrate(scratch_url, "heads")
    asyncio.run(_check(scratch_url, now))

    # Down again: the rows come back into plain tables.
    _migrate(scratch_url, "0006_alert_silences", down=True)

    async def after_downgrade() -> None:
        conn = await asyncpg.connect(plain_dsn(scratch_url))
        try:
            versions = {r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")}
            assert versions == set(BEFORE)
            assert await conn.fetchval("SELECT count(*) FROM event_log") == 40 * 72 + 1
            assert await conn.fetchval("SELECT count(*) FROM follower_sample") == 19 * (14 * 61 + 1)
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_partitioned_table "
                    "WHERE partrelid = 'event_log'::regclass"
                )
                == 0
            )
        finally:
            await conn.close()

    asyncio.run(after_downgrade())
