"""Reconcile time for 10,000 regions: cold (all to enqueue), warm (nothing to do), one region.

python -m bench.reconcile [--regions 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert

from bench.support import bench_settings, machine
from engine.runtime import Runtime
from engine.scheduler import reconcile
from storage.models import Region
from storage.settings import Settings

CRONS = ["0 3 * * *", "0 */12 * * *", "*/15 * * * *", "30 6 * * 1-5", "0 0 * * 0"]


async def run(settings: Settings, count: int) -> None:
    rt = await Runtime.connect(settings)
    now = datetime.now(UTC)
    rows = [
        {
            "code": f"REGION_{i:05d}",
            "name": f"Region {i}",
            "cron": CRONS[i % len(CRONS)],
            "timezone": "America/Detroit" if i % 2 else "UTC",
            "schedule_since": now,
        }
        for i in range(count)
    ]
    async with rt.db.transaction() as session:
        for start in range(0, count, 2000):
            await session.execute(insert(Region).values(rows[start : start + 2000]))
    print(f"machine: {machine()}")
    for label, only in (
        ("cold (enqueue all)", None),
        ("warm (no change)", None),
        ("one region (NOTIFY path)", {"REGION_00042"}),
    ):
        started = time.perf_counter()
        report = await reconcile(rt, only=only)
        took = (time.perf_counter() - started) * 1000
        print(
            f"reconcile {label:<26} regions={report.regions:>6} enqueued={report.enqueued:>6} "
            f"removed={report.removed:>3}  {took:8.1f} ms"
        )
    await rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regions", type=int, default=10_000)
    args = parser.parse_args()
    with bench_settings() as settings:
        asyncio.run(run(settings, args.regions))


if __name__ == "__main__":
    main()
