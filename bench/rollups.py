"""Rollup time over a 14-day window: a full run, then incremental re-runs.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        python -m bench.rollups [--events 1000000] [--units 200000] [--late 10000]

Events are generated inside Postgres (INSERT … SELECT generate_series) in a throw-away database:
`--events` over the 14 days, `--units` devices, each assigned to one of two running experiments'
variants (so experiment and funnel rollups do real work), five event names. Then:
1. full rollup (daily + experiments + funnels), 2. an incremental run with nothing new,
3. `--late` late events spread over the window, 4. an incremental run that picks them up,
5. a full run for comparison (and the check that both give the same tables).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.support import bench_settings, cpu_seconds, database_backend_pids
from engine.experiments.rollups import run_rollups, window_for
from storage import partitions as p
from storage.database import Database, plain_dsn
from storage.settings import Settings

GENERATE_CHUNK = 1_000_000

SETUP_SQL = """
INSERT INTO experiment (key, name, status, primary_metric, started_at)
VALUES ('checkout', 'Checkout', 'running', 'purchase', now() - interval '20 days'),
       ('onboarding', 'Onboarding', 'running', 'signup', now() - interval '20 days');
INSERT INTO experiment_variant (experiment_id, key, name, weight, position)
SELECT x.id, v.key, v.key, 0.5, v.pos
FROM experiment x CROSS JOIN (VALUES ('control', 0), ('v1', 1)) AS v(key, pos);
INSERT INTO experiment_funnel (experiment_id, name, steps)
SELECT id, 'main', '["app_open", "add_to_cart", "purchase"]'::jsonb FROM experiment;
"""

ASSIGN_SQL = """
INSERT INTO assignment (unit_id, experiment_id, variant_key, bucket, assigned_at)
SELECT 'device-' || u, x.id, CASE WHEN (u + x.id) % 2 = 0 THEN 'control' ELSE 'v1' END, 0.5,
       now() - interval '13 days' + (u % 1000) * interval '1 minute'
FROM generate_series(0, $1 - 1) AS u CROSS JOIN experiment x
"""

# Names weighted like an app: many opens and views, few purchases.
EVENTS_SQL = """
INSERT INTO event_log
    (event_id, unit_id, name, occurred_at, client_ts, received_at, properties, assignments)
SELECT gen_random_uuid(), 'device-' || (i % $2),
       (ARRAY['app_open','screen_view','screen_view','add_to_cart','purchase','signup'])
           [1 + (hashint8(i + 977) & 2147483647) % 6],
       t, t, COALESCE($6::timestamptz, t + interval '2 seconds'), '{"screen": "home"}'::jsonb,
       jsonb_build_object(
           'checkout', CASE WHEN ((i % $2) + 1) % 2 = 0 THEN 'control' ELSE 'v1' END,
           'onboarding', CASE WHEN ((i % $2) + 2) % 2 = 0 THEN 'control' ELSE 'v1' END)
FROM (
    SELECT i, $3::timestamptz + ((hashint8(i) & 2147483647) % ($4::bigint)) * interval '1 second'
           AS t
    FROM generate_series($1::bigint, $5::bigint) AS i
) g
-- Stored in arrival order, as the api stores them (the BRIN indexes rely on it).
ORDER BY t
"""


async def generate(
    settings: Settings, events: int, units: int, late: bool = False, late_days: int = 2
) -> float:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    started = time.perf_counter()
    window = window_for(14)
    try:
        if not late:
            # Day partitions exist ahead of the events in production (engine maintenance).
            for day in p.starts_between(p.EVENTS, window.start_ts, window.end_ts):
                await conn.execute(p.create_sql(p.EVENTS, day))
            await conn.execute(SETUP_SQL)
            await conn.execute(ASSIGN_SQL, units)
        # From the window's first midnight up to an hour ago (never in the future).
        start_ts = window.start_ts
        if late:
            # Phones that were offline: their events belong to the last `late_days` days.
            start_ts = window.end_ts - timedelta(days=late_days)
        span_s = int((datetime.now(UTC) - start_ts).total_seconds()) - 3_600
        offset = 10_000_000_000 if late else 0
        for start in range(0, events, GENERATE_CHUNK):
            end = min(start + GENERATE_CHUNK, events) - 1
            # Late events arrive now (received_at) for times all over the window.
            received = datetime.now(UTC) if late else None
            await conn.execute(
                EVENTS_SQL, offset + start, units, start_ts, span_s, offset + end, received
            )
            print(f"  generated {end + 1:,} / {events:,} events", flush=True)
        # As autovacuum leaves a table that has stopped changing (hint bits, statistics).
        for table in ("event_log", "assignment"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        # And as the checkpointer leaves it: the generator's gigabytes of dirty pages are on
        # disk, not flushed (and the rollup's first writes logged as full pages) during the run
        # being timed. Needs the pg_checkpoint role; without it the run is timed as it is.
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            print("  (no CHECKPOINT: the first run also pays for the generator's writes)")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def backend_cpu_s(settings: Settings) -> float:
    """CPU seconds used so far by the server processes of the bench database (user + system,
    from /proc: the server runs on this machine). Unlike wall time, it does not grow with the
    load other processes put on the shared cores. Pooled connections stay open between runs,
    so a difference of two readings is the work of the runs in between."""
    return sum(cpu_seconds(pid) for pid in await database_backend_pids(settings))


async def run(args: argparse.Namespace, settings: Settings) -> None:
    print(f"generating {args.events:,} events for {args.units:,} units …", flush=True)
    gen_s = await generate(settings, args.events, args.units)
    print(f"generated in {gen_s:.1f} s", flush=True)
    db = Database(settings)
    window = window_for(14)
    results = []
    try:
        for label, incremental, late in (
            ("full run", False, 0),
            ("incremental, nothing new", True, 0),
            (f"incremental after {args.late:,} late events", True, args.late),
            ("full run again", False, 0),
        ):
            if late:
                await generate(settings, late, args.units, late=True, late_days=args.late_days)
            load = os.getloadavg()[0]
            cpu_before = await backend_cpu_s(settings)
            started = time.perf_counter()
            report = await run_rollups(db, window, incremental=incremental, trigger="bench")
            elapsed = time.perf_counter() - started
            cpu = await backend_cpu_s(settings) - cpu_before
            parts = ", ".join(
                f"{r.job.value} {r.duration_ms / 1000:.2f} s ({r.units_of_work} recomputed, "
                f"{r.rows_written} rows)"
                for r in report.results
            )
            results.append((label, elapsed, load, report.checksums))
            print(
                f"{label:<38} {elapsed:7.2f} s   server CPU {cpu:6.2f} s   loadavg {load:.2f}   "
                f"[{parts}]",
                flush=True,
            )
    finally:
        await db.dispose()
    same = results[2][3] == results[3][3]
    print(f"incremental result == full result: {same}")
    print(f"events: {args.events + args.late:,}; machine: {os.cpu_count()} cores, shared")
    if not same:
        raise SystemExit("incremental and full runs disagree")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--late", type=int, default=10_000)
    parser.add_argument(
        "--late-days", type=int, default=2, help="late events fall in the last N days"
    )
    args = parser.parse_args()
    with bench_settings() as settings:
        asyncio.run(run(args, settings))


if __name__ == "__main__":
    main()
