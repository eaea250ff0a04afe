"""Tick lag when 10,000 regions fire on the same minute, with the engine's default settings.

    python -m bench.tick_lag [--regions 10000] [--concurrency N] [--engines 1]

Regions are enqueued ahead of time by a reconcile (one job per shard); then real
`creatordeck engine` processes run them. Lag = started_at - scheduled_for, from the run ledger;
"all done" = the last ledger row's finished_at - fire time. Printed beside them: arq's own
ceiling (no-op jobs/s, one process) measured in the same run, and the ratio of the regions
drained per second to it. Exits 1 if a region ran twice or not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from bench.support import arq_noop_ceiling, bench_settings, machine, summary
from engine.runtime import Runtime
from engine.scheduler import reconcile
from storage.models import Region
from storage.settings import Settings


def _fire_minute() -> datetime:
    now = datetime.now(UTC)
    fire = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return fire if (fire - now).total_seconds() > 25 else fire + timedelta(minutes=1)


async def prepare(settings: Settings, count: int, fire: datetime) -> None:
    rt = await Runtime.connect(settings)
    now = datetime.now(UTC)
    rows = [
        {
            "code": f"R{i:05d}",
            "name": f"Region {i}",
            "cron": f"{fire.minute} * * * *",
            "schedule_since": now,
        }
        for i in range(count)
    ]
    async with rt.db.transaction() as session:
        for start in range(0, count, 2000):
            await session.execute(insert(Region).values(rows[start : start + 2000]))
    report = await reconcile(rt)
    print(f"enqueued {report.enqueued} ticks for {fire:%H:%M:%S}Z")
    await rt.close()


async def ledger(settings: Settings, fire: datetime) -> list[tuple[float, float]]:
    rt = await Runtime.connect(settings)
    async with rt.db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT lag_ms, extract(epoch from finished_at - scheduled_for) * 1000 "
                "FROM job_run WHERE scheduled_for = :fire AND status = 'ok' "
                "AND finished_at IS NOT NULL"
            ),
            {"fire": fire},
        )
        found = [(float(lag), float(done)) for lag, done in rows]
    await rt.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regions", type=int, default=10_000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="CONCURRENCY for the engines (default: the engine's default)",
    )
    parser.add_argument("--engines", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with bench_settings() as settings:
        ceiling = arq_noop_ceiling(settings)
        fire = _fire_minute()
        asyncio.run(prepare(settings, args.regions, fire))
        env = dict(
            os.environ,
            DATABASE_URL=settings.database_url or "",
            REDIS_URL=settings.redis_url or "",
            REDIS_PREFIX=settings.redis_prefix,
            LOG_LEVEL="WARNING",
        )
        if args.concurrency:
            env["CONCURRENCY"] = str(args.concurrency)
        logs = tempfile.TemporaryFile()  # noqa: SIM115 - the engines write to it until the end
        engines = [
            subprocess.Popen(
                [sys.executable, "-m", "console.cli", "engine"],
                env=env,
                stdout=logs,
                stderr=subprocess.STDOUT,
            )
            for _ in range(args.engines)
        ]
        try:
            deadline = time.monotonic() + args.timeout
            rows: list[tuple[float, float]] = []
            while time.monotonic() < deadline:
                rows = asyncio.run(ledger(settings, fire))
                if len(rows) >= args.regions:
                    break
                time.sleep(1)
        finally:
            for engine in engines:
                engine.terminate()
            for engine in engines:
                engine.wait(timeout=60)
        lags = [lag for lag, _ in rows]
        done = [finished for _, finished in rows]
        concurrency = args.concurrency or Settings(_env_file=None).engine.concurrency
        print(f"machine: {machine()}")
        print(
            f"engines={args.engines} concurrency={concurrency} regions={args.regions} "
            f"ran={len(rows)}"
        )
        print(f"tick lag (ms, start - fire time):  {summary(lags)}")
        print(f"all done (ms after fire time):     max={max(done):.0f}")
        rate = len(rows) / (max(done) / 1000)
        print(f"throughput: {rate:.0f} ticks/s")
        print(f"baseline: arq no-op ceiling {ceiling:.0f} jobs/s (same run, one process)")
        print(f"ratio: {rate / ceiling:.1f}x the arq ceiling")
        if len(rows) != args.regions:
            raise SystemExit(f"FAIL: {len(rows)} ledger rows for {args.regions} regions")


if __name__ == "__main__":
    main()
