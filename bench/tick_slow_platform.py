"""Small regions must not wait behind big ones on a slow platform.

    python -m bench.tick_slow_platform [--big 10] [--big-creators 5000] [--small 1000]
                                       [--small-creators 2] [--latency-ms 2000]

10 regions with 5,000 creators each and 1,000 small regions fire on the same minute; the
platform (a `creatordeck mockstagram` process) answers every call in 2 s. One `creatordeck
engine` with default settings runs them. Before shards, a tick held a worker slot while its
fetch batches ran, so four big regions blocked every other region's tick. Now a tick never waits
for its batches: the floor is p99 start lag of the small regions < 1 s.

Printed: lag (started_at - fire time) of the small and the big regions, how many runs completed
and the fetch batches still queued when the last region started, the arq no-op ceiling measured
in the same run and the ratio of regions started per second to it. Exits 1 when a region did
not start within the timeout, or ran twice, or the floor is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.support import (
    arq_noop_ceiling,
    bench_settings,
    free_port,
    machine,
    percentile,
    process_env,
    start_cli,
    stop_all,
    summary,
    wait_http,
)
from engine import fetch_queue
from engine.runtime import Runtime
from engine.scheduler import reconcile
from storage.database import plain_dsn
from storage.settings import Settings

FLOOR_P99_MS = 1000


def _fire_minute() -> datetime:
    now = datetime.now(UTC)
    fire = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return fire if (fire - now).total_seconds() > 30 else fire + timedelta(minutes=1)


async def prepare(settings: Settings, args: argparse.Namespace, fire: datetime) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    cron = f"{fire.minute} * * * *"
    try:
        regions = [(f"BIG{i:02d}", args.big_creators) for i in range(args.big)]
        regions += [(f"SMALL{i:04d}", args.small_creators) for i in range(args.small)]
        await conn.executemany(
            "INSERT INTO region (code, name, cron, schedule_since) VALUES ($1, $1, $2, now())",
            [(code, cron) for code, _ in regions],
        )
        records = []
        for code, count in regions:
            records.extend(
                ("mock", f"{code}-{n}", f"{code.lower()}{n}", code, "active") for n in range(count)
            )
        await conn.copy_records_to_table(
            "creator",
            records=records,
            columns=["platform", "external_id", "handle", "region_code", "status"],
        )
    finally:
        await conn.close()
    rt = await Runtime.connect(settings)
    try:
        report = await reconcile(rt)
    finally:
        await rt.close()
    print(f"{len(regions)} regions, {len(records)} creators; {report.enqueued} tick jobs queued")


async def ledger(settings: Settings, fire: datetime) -> list[tuple[str, float, str]]:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        rows = await conn.fetch(
            "SELECT region_code, lag_ms, status FROM job_run WHERE scheduled_for = $1", fire
        )
    finally:
        await conn.close()
    return [(str(r[0]), float(r[1] or 0), str(r[2])) for r in rows]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return process_env(settings, METRICS_PORT="0", **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=10)
    parser.add_argument("--big-creators", type=int, default=5000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--small-creators", type=int, default=2)
    parser.add_argument("--latency-ms", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    total = args.big + args.small
    with bench_settings() as settings:
        ceiling = arq_noop_ceiling(settings)
        fire = _fire_minute()
        asyncio.run(prepare(settings, args, fire))
        port = free_port()
        mock = start_cli(
            ["mockstagram", "--port", str(port), "--latency-ms", str(args.latency_ms)],
            _env(settings),
        )
        procs = [mock]
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            procs.append(
                start_cli(["engine"], _env(settings, MOCKSTAGRAM_URL=f"http://127.0.0.1:{port}"))
            )
            deadline = time.monotonic() + args.timeout
            rows: list[tuple[str, float, str]] = []
            while time.monotonic() < deadline:
                rows = asyncio.run(ledger(settings, fire))
                if len(rows) >= total:
                    break
                time.sleep(0.5)
            queued = asyncio.run(_fetch_depth(settings))
            completed = sum(1 for _, _, status in rows if status != "running")
        finally:
            stop_all(procs)
        small = [lag for code, lag, _ in rows if code.startswith("SMALL")]
        big = [lag for code, lag, _ in rows if code.startswith("BIG")]
        print(f"machine: {machine()}")
        print(
            f"regions: {args.big} x {args.big_creators} creators + {args.small} x "
            f"{args.small_creators}; platform latency {args.latency_ms} ms; started {len(rows)}"
        )
        if small:
            print(f"small regions lag (ms): {summary(small)}")
        if big:
            print(f"big regions lag (ms):   {summary(big)}")
        print(f"runs completed when the last region started: {completed}; fetch queue {queued}")
        lags = small + big
        rate = len(rows) / max(max(lags) / 1000, 1e-3) if lags else 0.0
        print(f"regions started per second after the fire time: {rate:.0f}")
        print(f"baseline: arq no-op ceiling {ceiling:.0f} jobs/s (same run, one process)")
        print(f"ratio: {rate / ceiling:.1f}x the arq ceiling")
        if len(rows) != total:
            raise SystemExit(f"FAIL: {len(rows)} ledger rows for {total} regions")
        p99 = percentile(small, 99)
        if p99 >= FLOOR_P99_MS:
            raise SystemExit(f"FAIL: small regions p99 lag {p99:.0f} ms >= {FLOOR_P99_MS} ms")
        print(f"PASS: small regions p99 lag {p99:.0f} ms < {FLOOR_P99_MS} ms")


async def _fetch_depth(settings: Settings) -> str:
    rt = await Runtime.connect(settings)
    try:
        depth = await fetch_queue.depth(rt.redis, settings)
    finally:
        await rt.close()
    return f"ready={depth.ready} deferred={depth.deferred} running={depth.running}"


if __name__ == "__main__":
    main()
