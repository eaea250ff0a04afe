"""Retention and charts at scale: dropping a day of events, and one creator's 1-year chart.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        python -m bench.partitions [--day-events 2000000] [--creators 10000]

In a throw-away database: `--day-events` events in one day 100 days ago, then the maintenance
job with EVENT_RETENTION_DAYS=90 drops that day (timed; the baseline is a DELETE of the same
rows, measured in the same run on a copy). Then `--creators` creators with two samples a day
for a year (monthly partitions), downsampled once, and the console's 1-year chart query for
one creator, timed (median and max of 50 creators), against the same chart from raw samples.
Exits non-zero if a row is lost (samples or events outside the dropped day).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import text

from bench.support import bench_settings
from engine.jobs.maintenance import downsample, maintain
from storage import partitions as p
from storage.database import Database, plain_dsn
from storage.queries import series
from storage.settings import Settings

EVENTS_SQL = """
INSERT INTO event_log (event_id, unit_id, name, occurred_at, client_ts, received_at,
                       properties, assignments)
SELECT gen_random_uuid(), 'u' || (i % 50000), 'open',
       $1::timestamptz + (i % 86400) * interval '1 second', $1::timestamptz, $1::timestamptz,
       '{}', '{}'
FROM generate_series(1, $2) i
"""


async def drop_day(settings: Settings, events: int, now: datetime) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    db = Database(settings)
    try:
        day = p.floor(p.EVENTS, now - timedelta(days=100))
        await conn.execute(p.create_sql(p.EVENTS, day))
        await conn.execute(EVENTS_SQL, day, events)
        await conn.execute(EVENTS_SQL, p.floor(p.EVENTS, now), 1000)
        # A day 100 days old was vacuumed long ago. Freshly written, autovacuum would be busy
        # with it now, and DROP TABLE would wait for its cancellation (deadlock_timeout, 1 s):
        # the figure would time autovacuum, not the drop.
        await conn.execute(f"VACUUM ANALYZE {p.name_of(p.EVENTS, day)}")
        # The baseline: the same rows deleted from a plain copy.
        await conn.execute(f"CREATE TABLE plain_copy AS SELECT * FROM {p.name_of(p.EVENTS, day)}")
        started = time.perf_counter()
        await conn.execute("DELETE FROM plain_copy WHERE occurred_at < $1", day + timedelta(1))
        delete_s = time.perf_counter() - started
        await conn.execute("DROP TABLE plain_copy")
        # The engine's pool is connected long before its hourly job: so is this one.
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
        load = os.getloadavg()[0]
        started = time.perf_counter()
        reports = await maintain(db, settings.replace(retention={"event_days": 90}), now)
        drop_s = time.perf_counter() - started
        left = await conn.fetchval("SELECT count(*) FROM event_log")
        drop = reports["event_log"].drop_s
        print(
            f"drop a day of {events:,} events   {drop:.3f} s (whole maintenance run {drop_s:.2f} s)"
        )
        print(f"  baseline DELETE of the same   {delete_s:.3f} s   loadavg {load:.2f}")
        print(f"  dropped {reports['event_log'].dropped}; events left {left}")
        if left != 1000:
            raise SystemExit("rows outside the dropped day were lost")
    finally:
        await db.dispose()
        await conn.close()


async def chart(settings: Settings, creators: int, now: datetime) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    db = Database(settings)
    try:
        await conn.execute(
            "INSERT INTO creator (platform, external_id, handle) "
            "SELECT 'mock', 'c' || i, 'c' || i FROM generate_series(1, $1) i",
            creators,
        )
        first = p.floor(p.EVENTS, now) - timedelta(days=365)
        for start in p.starts_between(p.SAMPLES, first, now):
            await conn.execute(p.create_sql(p.SAMPLES, start))
        started = time.perf_counter()
        for month in range(13):
            lo = first + timedelta(days=month * 28)
            hi = min(lo + timedelta(days=28), now)
            if lo >= hi:
                break
            await conn.execute(
                "INSERT INTO follower_sample (creator_id, observed_at, followers) "
                "SELECT c.id, t, c.id * 1000 + extract(epoch FROM t)::bigint / 3600 "
                "FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 second', "
                "interval '12 hours') t CROSS JOIN creator c",
                lo,
                hi,
            )
        rows = await conn.fetchval("SELECT count(*) FROM follower_sample")
        print(f"samples generated  {rows:,} in {time.perf_counter() - started:.1f} s")
        await conn.execute("ANALYZE follower_sample")
        # The samples were written after the first maintenance run: downsample them all.
        await conn.execute("DELETE FROM downsample_state")
        started = time.perf_counter()
        await downsample(db, now)
        print(f"first downsampling {time.perf_counter() - started:.1f} s")
        await conn.execute("ANALYZE follower_series")
        ids = [r[0] for r in await conn.fetch("SELECT id FROM creator ORDER BY random() LIMIT 50")]
        load = os.getloadavg()[0]
        series_ms, raw_ms = [], []
        for creator_id in ids:
            started = time.perf_counter()
            async with db.session() as session:
                _, points = await series.follower_series(
                    session, creator_id, now - timedelta(days=365), now
                )
            series_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            raw = await conn.fetch(
                "SELECT observed_at, followers FROM follower_sample WHERE creator_id = $1 "
                "AND observed_at >= $2 ORDER BY observed_at",
                creator_id,
                now - timedelta(days=365),
            )
            raw_ms.append((time.perf_counter() - started) * 1000)
        print(
            f"1-year chart, one creator of {creators:,}: daily series median "
            f"{statistics.median(series_ms):.1f} ms, max {max(series_ms):.1f} ms "
            f"({len(points)} points)"
        )
        print(
            f"  baseline from raw samples: median {statistics.median(raw_ms):.1f} ms, "
            f"max {max(raw_ms):.1f} ms ({len(raw)} rows)   loadavg {load:.2f}"
        )
    finally:
        await db.dispose()
        await conn.close()


async def run(args: argparse.Namespace, settings: Settings) -> None:
    now = datetime.now(UTC)
    print(f"loadavg {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores, shared")
    await drop_day(settings, args.day_events, now)
    if args.creators:
        await chart(settings, args.creators, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--day-events", type=int, default=2_000_000)
    parser.add_argument("--creators", type=int, default=10_000)
    args = parser.parse_args()
    with bench_settings() as settings:
        asyncio.run(run(args, settings))


if __name__ == "__main__":
    main()
