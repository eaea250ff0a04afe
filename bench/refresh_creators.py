"""Refresh N creators end to end against the mock platform on loopback.

    python -m bench.refresh_creators [--creators 100000] [--off-creators 10000]
                                     [--engines 2] [--batch-size 500] [--scenario all]

(DATABASE_URL / REDIS_URL: servers to use; unset, embedded ones start in a temp folder.)

A scratch database with the creators in one region per scenario, a `creatordeck mockstagram`
process, and `creatordeck engine --role worker` processes (tick + fetch workers). For each
scenario the bench enqueues a manual tick and times it from enqueue until every creator of
the region has been checked in the tick's sampling slot (all rows in Postgres). Scenarios:

- `on`:     batching on (FETCH_BATCH_SIZE creators per job, 100 ids per API call)
- `off`:    batching off (one arq job and one API call per creator), on fewer creators
- `faults`: batching on, the platform answers 20% of requests with 503

Printed per scenario: creators/s, API calls per creator (counted by the mock), fetch jobs,
samples written and duplicate samples (must be 0), the tick's ledger counts, machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.support import (
    bench_settings,
    cpu_seconds,
    free_port,
    machine,
    process_env,
    start_cli,
    stop_all,
    wait_http,
)
from engine import queues, tick_queue
from storage.database import plain_dsn
from storage.settings import Settings


async def _backend_pids(conn: asyncpg.Connection) -> list[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    )
    return [int(r["pid"]) for r in rows]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return process_env(settings, ENV="test", TICK_TIMEOUT_S="900", PYTHONPATH=os.getcwd(), **extra)


async def _seed(settings: Settings, region: str, count: int, offset: int) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        await conn.execute(
            "INSERT INTO region (code, name, cron, timezone, active) "
            "VALUES ($1, $1, '0 3 1 1 *', 'UTC', true) ON CONFLICT DO NOTHING",
            region,
        )
        records = [
            ("mock", f"acct{offset + n}", f"creator{offset + n}", region, "active")
            for n in range(count)
        ]
        await conn.copy_records_to_table(
            "creator",
            records=records,
            columns=["platform", "external_id", "handle", "region_code", "status"],
        )
    finally:
        await conn.close()


@dataclass
class Result:
    scenario: str
    creators: int
    seconds: float
    api_calls: int
    samples: int
    duplicates: int
    counts: dict[str, object]
    load: str
    cpu_s: dict[str, float]

    def show(self) -> str:
        rate = self.creators / self.seconds if self.seconds else float("nan")
        return (
            f"[{self.scenario}] {self.creators} creators fresh in {self.seconds:.2f}s "
            f"= {rate:,.0f} creators/s; API calls/creator {self.api_calls / self.creators:.3f}; "
            f"samples {self.samples}, duplicates {self.duplicates}\n"
            f"    ledger counts: {json.dumps(self.counts, sort_keys=True)}\n"
            f"    CPU seconds used: {json.dumps(self.cpu_s)} = "
            f"{sum(self.cpu_s.values()) / self.creators * 1e6:.0f} us/creator\n"
            f"    machine: {self.load}"
        )


async def _fresh(conn: asyncpg.Connection, region: str, slot: datetime) -> int:
    value = await conn.fetchval(
        "SELECT count(*) FROM creator WHERE region_code = $1 AND last_slot_at >= $2",
        region,
        slot,
    )
    return int(value)


async def _batches_done(conn: asyncpg.Connection, region: str) -> int:
    """Cheap progress: a batch row is written in the same transaction as its creators."""
    value = await conn.fetchval(
        "SELECT coalesce(sum((b.counts->>'fetched')::int + (b.counts->>'not_modified')::int "
        "+ (b.counts->>'failed')::int), 0) FROM fetch_batch b JOIN job_run r ON r.id = b.run_id "
        "WHERE r.region_code = $1",
        region,
    )
    return int(value)


async def _run_scenario(
    settings: Settings,
    name: str,
    region: str,
    count: int,
    mock_url: str,
    error_rate: float,
    timeout_s: float,
    pids: dict[str, list[int]],
) -> Result:
    async with httpx.AsyncClient(base_url=mock_url) as client:
        await client.put("/admin/faults", json={"error_rate": error_rate})
        before = (await client.get("/admin/stats")).json()
    redis = await queues.connect(settings)
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        # Postgres backends of the bench database (the engines' pools are open by now).
        backends_before = {p: cpu_seconds(p) for p in await _backend_pids(conn)}
        cpu_before = {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}
        fire = datetime.now(UTC).replace(microsecond=0)
        slot = datetime.fromtimestamp(int(fire.timestamp()) // 60 * 60, UTC)
        started = time.perf_counter()
        await tick_queue.enqueue_ticks(
            redis, settings, [tick_queue.TickRequest(region, fire, manual=True)]
        )
        deadline = started + timeout_s
        first_done = None
        while True:
            done = await _batches_done(conn, region)
            if done and first_done is None:
                first_done = time.perf_counter() - started
            if done >= count or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = {
            name: round(sum(cpu_seconds(p) for p in group) - cpu_before[name], 2)
            for name, group in pids.items()
        }
        # Backends opened during the run count whole (they were born in it).
        cpu["postgres"] = round(
            sum(cpu_seconds(p) - backends_before.get(p, 0.0) for p in await _backend_pids(conn)), 2
        )
        fresh = await _fresh(conn, region, slot)
        load = machine()
        # The tick finishes its ledger row right after its last batch.
        counts: dict[str, object] = {}
        for _ in range(100):
            row = await conn.fetchrow(
                "SELECT status, counts FROM job_run WHERE region_code = $1 "
                "ORDER BY id DESC LIMIT 1",
                region,
            )
            if row is not None and row["status"] != "running":
                counts = json.loads(row["counts"]) if isinstance(row["counts"], str) else {}
                break
            await asyncio.sleep(0.1)
        samples = int(
            await conn.fetchval(
                "SELECT count(*) FROM follower_sample s JOIN creator c ON c.id = s.creator_id "
                "WHERE c.region_code = $1",
                region,
            )
        )
        duplicates = int(
            await conn.fetchval(
                "SELECT count(*) - count(DISTINCT (creator_id, observed_at)) FROM follower_sample"
            )
        )
    finally:
        await conn.close()
        await redis.aclose()
    async with httpx.AsyncClient(base_url=mock_url) as client:
        after = (await client.get("/admin/stats")).json()
    calls = int(after.get("requests", 0)) - int(before.get("requests", 0))
    if fresh < count:
        name = f"{name} (TIMED OUT: {fresh}/{count} fresh)"
    counts["first_batch_done_s"] = round(first_done or 0, 2)
    return Result(name, count, seconds, calls, samples, duplicates, counts, load, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--off-creators", type=int, default=10_000)
    parser.add_argument("--engines", type=int, default=2, help="engine worker processes")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--fetch-jobs", type=int, default=8, help="fetch jobs at once/engine")
    parser.add_argument("--timeout-s", type=float, default=600)
    parser.add_argument(
        "--scenario", choices=["all", "on", "off", "faults"], default="all", action="store"
    )
    args = parser.parse_args()
    scenarios = ["on", "off", "faults"] if args.scenario == "all" else [args.scenario]
    sizes = {"on": args.creators, "off": args.off_creators, "faults": args.creators}
    print(f"before: {machine()}", flush=True)
    with bench_settings() as settings:
        offset = 0
        for scenario in scenarios:
            asyncio.run(_seed(settings, f"BENCH_{scenario.upper()}", sizes[scenario], offset))
            offset += sizes[scenario]
        port = free_port()
        mock_url = f"http://127.0.0.1:{port}"
        # A slot of an hour: the platform's numbers (and ETags) do not move during the run.
        mock = start_cli(["mockstagram", "--port", str(port), "--slot-s", "3600"], _env(settings))
        try:
            wait_http(mock_url + "/health")
            for scenario in scenarios:
                batch = 1 if scenario == "off" else args.batch_size
                env = _env(
                    settings,
                    MOCKSTAGRAM_URL=mock_url,
                    FETCH_BATCH_SIZE=str(batch),
                    FETCH_JOBS=str(args.fetch_jobs if batch > 1 else 64),
                    FETCH_MAX_TRIES="50",
                )
                engines = [
                    start_cli(["engine", "--role", "worker"], env) for _ in range(args.engines)
                ]
                try:
                    time.sleep(2.0)  # let the engines connect and start polling
                    result = asyncio.run(
                        _run_scenario(
                            settings,
                            f"{scenario}, batch size {batch}, {args.engines} engine(s)",
                            f"BENCH_{scenario.upper()}",
                            sizes[scenario],
                            mock_url,
                            0.2 if scenario == "faults" else 0.0,
                            args.timeout_s,
                            {"engines": [e.pid for e in engines], "mock": [mock.pid]},
                        )
                    )
                finally:
                    stop_all(engines)
                print(result.show(), flush=True)
        finally:
            stop_all([mock])


if __name__ == "__main__":
    main()
