"""One creator's follower chart among 100,000 creators with a year of samples (2 a day).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        python -m bench.creator_chart [--creators 100000] [--days 365] [--reads 300]

What a chart reads, and so what is generated (in a throw-away database): a chart never reads the
73 M raw samples of a year. `storage.queries.series.follower_series` reads the daily series
(1-year chart) or the hourly one (the console's 30-day default) up to `done_until`, then the raw
samples since then (less than a bucket). So the bench generates, with INSERT … SELECT
generate_series, what downsampling would have written: the daily series for `--days` (36.5 M
rows at 100,000 creators), the hourly series for HOURLY_KEEP (2 rows a day), and the last
LOOK_BACK of raw samples; the raw table's older months would change nothing the chart reads.
Rows are written one day after the other for every creator, as the hourly downsampling writes
them, so one creator's year lies on ~365 heap pages, not on 4 (the layout a creator-ordered load
would give, and a flattering one).

Then `--reads` charts of random creators, each timed through the console's call
(`follower_series` in one session of the console's pool), 1-year and 30-day: p50, p99, max.
The baseline in the same run: the same 1-year chart from raw samples of the last LOOK_BACK
scaled up would be 730 rows on 730 pages; printed instead is the plan's buffer count of one
1-year read (EXPLAIN ANALYZE, BUFFERS), the figure that does not depend on the machine's load.
Exits non-zero if a chart has the wrong number of points.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.support import bench_settings, percentile
from storage import partitions as p
from storage.database import Database, plain_dsn
from storage.queries import series
from storage.settings import Settings

DAILY_SQL = """
INSERT INTO follower_series (creator_id, resolution, bucket, followers, following, posts, views)
SELECT c, 'day', $1::timestamptz + d * interval '1 day', c * 1000 + d, 10, 5, c + d
FROM generate_series($2::int, $3::int - 1) d, LATERAL generate_series(1, $4::int) c
"""
HOURLY_SQL = """
INSERT INTO follower_series (creator_id, resolution, bucket, followers, following, posts, views)
SELECT c, 'hour', $1::timestamptz + h * interval '12 hours', c * 1000 + h, 10, 5, c + h
FROM generate_series(0, $2::int - 1) h, LATERAL generate_series(1, $3::int) c
"""
SAMPLES_SQL = """
INSERT INTO follower_sample (creator_id, observed_at, followers, following, posts, views)
SELECT c, $1::timestamptz + h * interval '12 hours', c * 1000 + h, 10, 5, c + h
FROM generate_series(0, $2::int - 1) h, LATERAL generate_series(1, $3::int) c
"""
CHUNK_DAYS = 30


async def generate(conn: asyncpg.Connection, creators: int, days: int, now: datetime) -> None:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=days)
    await conn.execute(
        "INSERT INTO creator (platform, external_id, handle) "
        "SELECT 'mock', 'c' || i, 'c' || i FROM generate_series(1, $1) i",
        creators,
    )
    started = time.perf_counter()
    # Bulk load: the key and the foreign key come back after (a per-row key probe and RI check
    # would make 36.5 M rows a ten-minute load). A key built at once packs its pages fuller than
    # one grown by daily inserts; one creator's year is 2-3 leaf pages either way.
    await conn.execute(
        "ALTER TABLE follower_series DROP CONSTRAINT pk_follower_series, "
        "DROP CONSTRAINT fk_follower_series_creator_id_creator"
    )
    for lo in range(0, days, CHUNK_DAYS):
        await conn.execute(DAILY_SQL, first_day, lo, min(lo + CHUNK_DAYS, days), creators)
    # Samples at 00:00 and 12:00. The hourly series is done up to the hour before now (the
    # hourly maintenance run), kept HOURLY_KEEP; raw samples cover the last LOOK_BACK.
    half = timedelta(hours=12)
    last_sample = today + half if now >= today + half else today
    last_hourly = last_sample if now - last_sample >= timedelta(hours=1) else last_sample - half
    hours_from = today - series.HOURLY_KEEP
    await conn.execute(HOURLY_SQL, hours_from, (last_hourly - hours_from) // half + 1, creators)
    await conn.execute(
        "ALTER TABLE follower_series ADD CONSTRAINT pk_follower_series "
        "PRIMARY KEY (creator_id, resolution, bucket)"
    )
    await conn.execute(
        "ALTER TABLE follower_series ADD CONSTRAINT fk_follower_series_creator_id_creator "
        "FOREIGN KEY (creator_id) REFERENCES creator (id) ON DELETE CASCADE NOT VALID"
    )
    daily_s = time.perf_counter() - started
    raw_from = today - series.LOOK_BACK
    for start in p.starts_between(p.SAMPLES, raw_from, now):
        await conn.execute(p.create_sql(p.SAMPLES, start))
    await conn.execute(SAMPLES_SQL, raw_from, (last_sample - raw_from) // half + 1, creators)
    await conn.execute(
        "INSERT INTO downsample_state (resolution, done_until) VALUES ('day', $1), ('hour', $2) "
        "ON CONFLICT (resolution) DO UPDATE SET done_until = EXCLUDED.done_until",
        today,
        last_hourly + timedelta(hours=1),
    )
    rows = await conn.fetchval("SELECT count(*) FROM follower_series")
    size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('follower_series'))")
    print(
        f"generated          {rows:,} series rows ({size}; loaded and keyed in {daily_s:.0f} s), "
        f"{creators:,} creators, {days} days   loadavg {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    started = time.perf_counter()
    # What autovacuum would have done long ago to rows this old (statistics, visibility map).
    await conn.execute("VACUUM ANALYZE follower_series")
    await conn.execute("ANALYZE follower_sample")
    print(f"vacuum analyze     {time.perf_counter() - started:.0f} s", flush=True)


async def timed_reads(
    db: Database, ids: list[int], span: timedelta, now: datetime, expected: int
) -> list[float]:
    out = []
    for creator_id in ids:
        started = time.perf_counter()
        async with db.session() as session:
            _, points = await series.follower_series(session, creator_id, now - span, now)
        out.append((time.perf_counter() - started) * 1000)
        if abs(len(points) - expected) > 3:
            raise SystemExit(f"creator {creator_id}: {len(points)} points, expected ~{expected}")
    return out


async def explain(conn: asyncpg.Connection, creator_id: int, now: datetime) -> str:
    plan = await conn.fetch(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT bucket, followers FROM follower_series "
        "WHERE creator_id = $1 AND resolution = 'day' AND bucket >= $2 AND bucket < $3 "
        "ORDER BY bucket",
        creator_id,
        now - timedelta(days=365),
        now,
    )
    lines = [r[0] for r in plan]
    return str(next((line.strip() for line in lines if "Buffers" in line), lines[0]))


async def measure(
    conn: asyncpg.Connection, db: Database, args: argparse.Namespace, seed: int, label: str
) -> None:
    """Time `--reads` charts of random creators (1-year, then 30-day) and print them."""
    now = datetime.now(UTC)
    rng = random.Random(seed)
    ids = [rng.randint(1, args.creators) for _ in range(args.reads)]
    load = os.getloadavg()[0]
    year = await timed_reads(db, ids, timedelta(days=365), now, 366)
    month = await timed_reads(db, ids[::-1], timedelta(days=30), now, 61)
    buffers = await explain(conn, ids[0], now)
    load_after = os.getloadavg()[0]
    print(f"-- {label}")
    for span, values in (("1-year chart", year), ("30-day chart", month)):
        print(
            f"{span:<18} p50 {percentile(values, 50):.2f} ms, "
            f"p99 {percentile(values, 99):.2f} ms, max {max(values):.2f} ms "
            f"({len(values)} random creators of {args.creators:,})"
        )
    print(f"1-year daily read  {buffers} (pages of one creator's year)")
    print(f"loadavg            before {load:.2f}, after {load_after:.2f} (2 cores, shared)")


async def run(settings: Settings, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    db = Database(settings)
    try:
        await generate(conn, args.creators, args.days, datetime.now(UTC))
        async with db.session() as session:  # the console's pool is connected before a chart
            await series.done_until(session, "day")
        await measure(conn, db, args, 7, "the primary key (today's schema)")
        if args.covering:
            # The candidate: the chart's column in the key's leaves, so a creator's year is an
            # index-only scan of 2-3 pages instead of ~365 heap pages (needs the visibility map,
            # which autovacuum keeps for rows this old).
            started = time.perf_counter()
            await conn.execute(
                "CREATE INDEX ix_follower_series_chart ON follower_series "
                "(creator_id, resolution, bucket) INCLUDE (followers)"
            )
            await conn.execute("VACUUM follower_series")
            print(f"covering index     built in {time.perf_counter() - started:.0f} s")
            await measure(conn, db, args, 8, "with a covering index (key + followers)")
    finally:
        await db.dispose()
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument(
        "--covering", action="store_true", help="then time it again with a covering index"
    )
    args = parser.parse_args()
    print(f"loadavg {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores, shared", flush=True)
    with bench_settings() as settings:
        asyncio.run(run(settings, args))


if __name__ == "__main__":
    main()
