"""Events accepted and stored per second: batches of 100 posted to `creatordeck api` on loopback.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        python -m bench.events_ingest [--events 300000] [--connections 16] [--workers 1]

The api runs as its own process (uvicorn); this process is the load generator, with every
request body built before the clock starts and sent over keep-alive connections by a minimal
HTTP/1.1 client (so the generator costs as little CPU as possible). Every event has a fresh id,
so every accepted event is a stored row; the row count is checked at the end. A quarter of the
units have an assignment, so enrichment does real lookups.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson

from bench.support import (
    bench_settings,
    children,
    cpu_seconds,
    database_backends,
    exchange,
    percentile,
    postgres_cpu,
    start_api,
)
from storage.database import plain_dsn
from storage.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BATCH = 100
UNITS = 20_000
NAMES = ("app_open", "screen_view", "tap", "add_to_cart", "purchase")


def build_requests(batches: int, port: int, units_per_batch: int) -> list[bytes]:
    now = datetime.now(UTC)
    sent_at = now.isoformat()
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    out = []
    for b in range(batches):
        events = []
        for i in range(BATCH):
            n = b * BATCH + i
            events.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "unit_id": f"device-{(b * units_per_batch + i % units_per_batch) % UNITS}",
                    "name": NAMES[n % len(NAMES)],
                    "timestamp": (now - timedelta(seconds=n % 3600)).isoformat(),
                    "properties": {"screen": "home", "n": n},
                }
            )
        body = orjson.dumps({"sent_at": sent_at, "events": events})
        out.append(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    return out


async def _connection(
    port: int, queue: asyncio.Queue[bytes], latencies: list[float], stored: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body, elapsed = await exchange(reader, writer, request)
            latencies.append(elapsed)
            stored.append(orjson.loads(body)["stored"])
    finally:
        writer.close()


async def drive(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    stored: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, queue, latencies, stored) for _ in range(connections)))
    return time.perf_counter() - started, latencies, sum(stored)


async def seed_assignments(settings: Settings) -> None:
    """One running experiment and assignments for a quarter of the units (enrichment work)."""
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        exp_id = await conn.fetchval(
            "INSERT INTO experiment (key, name, status, primary_metric) "
            "VALUES ('bench', 'Bench', 'running', 'purchase') RETURNING id"
        )
        await conn.executemany(
            "INSERT INTO experiment_variant (experiment_id, key, name, weight, position) "
            "VALUES ($1, $2, $2, 0.5, $3)",
            [(exp_id, "control", 0), (exp_id, "v1", 1)],
        )
        await conn.executemany(
            "INSERT INTO assignment (unit_id, experiment_id, variant_key, bucket) "
            "VALUES ($1, $2, $3, 0.5)",
            [(f"device-{u}", exp_id, "control" if u % 2 else "v1") for u in range(0, UNITS, 4)],
        )
    finally:
        await conn.close()


async def count_rows(settings: Settings) -> int:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM event_log"))
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--warmup-batches", type=int, default=200)
    parser.add_argument(
        "--units-per-batch",
        type=int,
        default=1,
        help="distinct units in a batch (1: one device's batch, as a mobile SDK sends)",
    )
    args = parser.parse_args()
    batches = max(args.events // BATCH, 1)

    with bench_settings() as settings:
        asyncio.run(seed_assignments(settings))
        api, port = start_api(settings, args.workers, max(args.connections, 4))
        try:
            print(f"building {batches} batches of {BATCH} events …", flush=True)
            warm = build_requests(args.warmup_batches, port, args.units_per_batch)
            requests = build_requests(batches, port, args.units_per_batch)
            asyncio.run(drive(port, warm, args.connections))
            api_pids = [api.pid, *children(api.pid)]
            cpu_before = sum(cpu_seconds(p) for p in api_pids)
            backends = database_backends(settings)
            own_pg_before = sum(cpu_seconds(p) for p in backends)
            pg_before = postgres_cpu()
            load_before = os.getloadavg()
            own_before = time.process_time()
            elapsed, latencies, stored = asyncio.run(drive(port, requests, args.connections))
            own_cpu = time.process_time() - own_before
            api_cpu = sum(cpu_seconds(p) for p in api_pids) - cpu_before
            pg_cpu = postgres_cpu() - pg_before
            own_pg_cpu = sum(cpu_seconds(p) for p in backends) - own_pg_before
            load_after = os.getloadavg()
            rows = asyncio.run(count_rows(settings))
        finally:
            api.terminate()
            try:
                api.wait(timeout=15)
            except subprocess.TimeoutExpired:
                api.kill()

    sent = batches * BATCH
    print(f"events sent        {sent}")
    print(f"events stored      {stored} (rows in event_log after warm-up: {rows})")
    print(f"elapsed            {elapsed:.2f} s")
    print(f"throughput         {stored / elapsed:,.0f} events/s stored "
          f"({len(latencies) / elapsed:,.0f} batches/s)")  # fmt: skip
    print(f"batch latency      p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms")  # fmt: skip
    print(f"cpu                api {api_cpu / elapsed:.2f} cores, "
          f"postgres {pg_cpu / elapsed:.2f} cores (all clients), "
          f"load generator {own_cpu / elapsed:.2f} cores")  # fmt: skip
    print(f"cpu per event      api {api_cpu / stored * 1e6:.1f} us, "
          f"api's postgres backends {own_pg_cpu / stored * 1e6:.1f} us "
          f"({len(backends)} backends; all postgres {pg_cpu / stored * 1e6:.1f} us), "
          f"load generator {own_cpu / stored * 1e6:.1f} us")  # fmt: skip
    print(f"loadavg            before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"(2 cores; other work on the machine included)")  # fmt: skip
    print(f"connections        {args.connections}, api workers {args.workers}, "
          f"units per batch {args.units_per_batch}")  # fmt: skip
    if rows != stored + args.warmup_batches * BATCH:
        raise SystemExit("row count does not match what the api reported stored")


if __name__ == "__main__":
    main()
