"""Partitioned event_log and follower_sample on real Postgres: late rows wait in the DEFAULT and
move to their partition, retention drops whole partitions and rollups outlive them, a resend
is stored once, and the migration moves a populated database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from engine.experiments.rollups import Job, check_idempotency, run_rollups, window_for
from engine.jobs.maintenance import maintain, maintain_table
from storage import partitions as p
from storage.database import Database, plain_dsn
from storage.queries import partitions as pq
from storage.queries.experiments import insert_events
from storage.settings import Settings


@pytest.fixture
async def conn(test_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(plain_dsn(test_settings.database_url or ""))
    yield connection
    await connection.close()


def _now() -> datetime:
    # The test's clock: noon today (UTC), so "n days ago" is one well-defined day whatever the hour.
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, 12, tzinfo=UTC)


async def _events(
    conn: asyncpg.Connection, at: datetime, n: int, *, skew_s: float = 0.0, name: str = "open"
) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    batch = [
        {"event_id": i, "unit_id": f"u{k}", "name": name, "ts": at.isoformat(), "properties": {}}
        for k, i in enumerate(ids)
    ]
    await insert_events(conn, json.dumps(batch), skew_s, at)
    return ids


async def _where(conn: asyncpg.Connection, table: str, column: str) -> dict[str, int]:
    rows = await conn.fetch(
        f"SELECT tableoid::regclass::text AS part, count(*) AS n FROM {table} GROUP BY 1"
    )
    return {r["part"]: r["n"] for r in rows}


async def _forget(conn: asyncpg.Connection, table: p.PartitionedTable, *ats: datetime) -> None:
    """This test's days start without a partition (another test may have made one)."""
    for at in ats:
        await conn.execute(f"DROP TABLE IF EXISTS {p.name_of(table, p.floor(table, at))}")


async def test_a_late_event_waits_in_the_default_and_moves_to_its_new_partition(
    db: Database, conn: asyncpg.Connection
) -> None:
    now = _now()
    late = now - timedelta(days=12)
    await _forget(conn, p.EVENTS, late)
    ids = await _events(conn, late, 3)
    assert await _where(conn, "event_log", "occurred_at") == {"event_log_default": 3}

    report = await maintain_table(db, p.EVENTS, 0, now)

    day = p.name_of(p.EVENTS, p.floor(p.EVENTS, late))
    assert day in report.created and report.moved_rows == 3
    assert await _where(conn, "event_log", "occurred_at") == {day: 3}
    stored = {str(r[0]) for r in await conn.fetch("SELECT event_id FROM event_log")}
    assert stored == set(ids)
    # Ahead of time: today and the next `ahead` days exist, so new events never touch the DEFAULT.
    for k in range(p.EVENTS.ahead + 1):
        assert await conn.fetchval(
            "SELECT to_regclass($1) IS NOT NULL",
            p.name_of(p.EVENTS, p.floor(p.EVENTS, now + timedelta(days=k))),
        )
    # Running again changes nothing.
    again = await maintain_table(db, p.EVENTS, 0, now)
    assert again.created == [] and again.moved_rows == 0


async def test_a_resend_with_another_skew_is_stored_once(conn: asyncpg.Connection) -> None:
    now = _now()
    batch = [
        {
            "event_id": str(uuid.uuid4()),
            "unit_id": "u1",
            "name": "open",
            "ts": now.isoformat(),
            "properties": {},
        }
    ]
    assert await insert_events(conn, json.dumps(batch), 0.0, now) == 1
    # The app resends the batch later: its sent_at differs, so does the corrected time.
    assert await insert_events(conn, json.dumps(batch), 7.5, now) == 0
    assert await insert_events(conn, json.dumps(batch * 2), 0.0, now) == 0
    assert await conn.fetchval("SELECT count(*) FROM event_log") == 1


async def test_resends_across_partitions_are_stored_once_within_a_day(
    conn: asyncpg.Connection,
) -> None:
    midnight = datetime.combine(_now().date(), datetime.min.time(), UTC)
    for day in (midnight - timedelta(days=3), midnight - timedelta(days=1), midnight):
        await conn.execute(p.create_sql(p.EVENTS, day))

    def sent(at: datetime) -> dict[str, str | dict[str, str]]:
        return {"event_id": str(uuid.uuid4()), "unit_id": "u1", "name": "open",
                "ts": at.isoformat(), "properties": {}}  # fmt: skip

    # One batch over three days' partitions: the last event is 2 s before midnight.
    batch = [sent(midnight - timedelta(hours=h)) for h in (50, 20)]
    batch.append(sent(midnight - timedelta(seconds=2)))
    assert await insert_events(conn, json.dumps(batch), 0.0, midnight) == 3
    # Resent with another skew, the last one now falls in today's partition: all caught.
    assert await insert_events(conn, json.dumps(batch), 5.0, midnight) == 0
    assert await insert_events(conn, json.dumps(batch), -86_000.0, midnight) == 0
    # A clock that jumped by more than DEDUPE_WINDOW between sends: stored again, as documented.
    assert await insert_events(conn, json.dumps(batch[:1]), 90_000.0, midnight) == 1
    assert await conn.fetchval("SELECT count(*) FROM event_log") == 4


async def test_retention_drops_old_partitions_and_rollups_outlive_them(
    db: Database, conn: asyncpg.Connection, test_settings: Settings
) -> None:
    now = _now()
    old, older, recent = (now - timedelta(days=d) for d in (40, 35, 5))
    await _forget(conn, p.EVENTS, old, older, recent)
    await _events(conn, old, 2)
    await _events(conn, older, 3)
    await _events(conn, recent, 4)
    await maintain_table(db, p.EVENTS, 90, now)  # keeps all three days, in their partitions
    window = window_for(60, now.date())
    await run_rollups(db, window, [Job.DAILY])
    before = await conn.fetch("SELECT day, events FROM rollup_daily ORDER BY day")
    assert [r["events"] for r in before] == [2, 3, 4]
    # A straggler for an expired day sits in the DEFAULT: retention removes it too.
    await _forget(conn, p.EVENTS, now - timedelta(days=45))
    await _events(conn, now - timedelta(days=45), 1)

    keep_30 = test_settings.replace(retention={"event_days": 30})
    reports = await maintain(db, keep_30, now)

    report = reports["event_log"]
    assert {p.name_of(p.EVENTS, p.floor(p.EVENTS, d)) for d in (old, older)} <= set(report.dropped)
    assert report.deleted_default_rows == 1
    assert await conn.fetchval("SELECT count(*) FROM event_log") == 4
    async with db.session() as session:
        gone = await pq.horizon(session, p.EVENTS)
    assert gone == p.floor(p.EVENTS, now - timedelta(days=30))
    # The daily rollups of the dropped days survive a full re-run, which stays idempotent.
    await run_rollups(db, window, [Job.DAILY])
    after = await conn.fetch("SELECT day, events FROM rollup_daily ORDER BY day")
    assert after == before
    check = await check_idempotency(db, window)
    assert check.identical
    assert all(r.rows_written == 0 for r in check.second.results)


async def test_keep_for_ever_drops_nothing(db: Database, conn: asyncpg.Connection) -> None:
    now = _now()
    ancient = now - timedelta(days=400)
    await _forget(conn, p.EVENTS, ancient)
    await _events(conn, ancient, 1)
    report = await maintain_table(db, p.EVENTS, 0, now)
    assert report.dropped == [] and report.moved_rows == 1
    assert await conn.fetchval("SELECT count(*) FROM event_log") == 1


async def test_a_sample_for_a_missing_month_is_kept_and_moved(
    db: Database, conn: asyncpg.Connection
) -> None:
    now = _now()
    past = now - timedelta(days=200)
    await _forget(conn, p.SAMPLES, past)
    creator = await conn.fetchval(
        "INSERT INTO creator (platform, external_id, handle) VALUES ('mock', 'x1', 'x1') "
        "RETURNING id"
    )
    await conn.execute(
        "INSERT INTO follower_sample (creator_id, observed_at, followers) VALUES ($1, $2, 10)",
        creator,
        past,
    )
    assert await _where(conn, "follower_sample", "observed_at") == {"follower_sample_default": 1}
    report = await maintain_table(db, p.SAMPLES, 0, now)
    month = p.name_of(p.SAMPLES, p.floor(p.SAMPLES, past))
    assert report.moved_rows == 1
    assert await _where(conn, "follower_sample", "observed_at") == {month: 1}
    # The same slot again is still a no-op (the key includes the partition key).
    await conn.execute(
        "INSERT INTO follower_sample (creator_id, observed_at, followers) VALUES ($1, $2, 11) "
        "ON CONFLICT DO NOTHING",
        creator,
        past,
    )
    assert await conn.fetchval("SELECT followers FROM follower_sample") == 10
