"""Assignment requests per second and latency percentiles against `creatordeck api` on loopback.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        python -m bench.assignment [--requests 20000] [--connections 16] [--repeat 0.5]

Three running experiments; every request asks for all of them. `--repeat` of the requests come
from units that already have their assignments (sticky reads), the rest from fresh units (three
inserts each). Same minimal keep-alive HTTP/1.1 client as bench.events_ingest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
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
EXPERIMENTS = ("checkout", "onboarding", "paywall")


async def seed(settings: Settings) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        for key in EXPERIMENTS:
            exp_id = await conn.fetchval(
                "INSERT INTO experiment (key, name, status, primary_metric) "
                "VALUES ($1, $1, 'running', 'purchase') RETURNING id",
                key,
            )
            await conn.executemany(
                "INSERT INTO experiment_variant (experiment_id, key, name, weight, position) "
                "VALUES ($1, $2, $2, 0.5, $3)",
                [(exp_id, "control", 0), (exp_id, "v1", 1)],
            )
    finally:
        await conn.close()


def build(count: int, repeat: float, port: int) -> tuple[list[bytes], list[bytes]]:
    """(warm-up requests that create the repeat units, measured requests)."""
    rng = random.Random(1)
    known = [f"known-{i}" for i in range(max(int(count * repeat), 1))]
    head = (
        f"POST /v1/assignment HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()

    def request(unit: str) -> bytes:
        body = orjson.dumps({"unit_id": unit})
        return head + str(len(body)).encode() + b"\r\n\r\n" + body

    warm = [request(u) for u in known]
    measured = []
    fresh = 0
    for _ in range(count):
        if rng.random() < repeat:
            measured.append(request(rng.choice(known)))
        else:
            fresh += 1
            measured.append(request(f"fresh-{fresh}"))
    return warm, measured


async def _connection(
    port: int, queue: asyncio.Queue[bytes], latencies: list[float], new: list[int]
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
            served = orjson.loads(body)["assignments"]
            if len(served) != len(EXPERIMENTS):
                raise RuntimeError(f"expected {len(EXPERIMENTS)} assignments: {body[:300]!r}")
            new.append(sum(1 for a in served if a["new"]))
    finally:
        writer.close()


async def drive(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    latencies: list[float] = []
    new: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, queue, latencies, new) for _ in range(connections)))
    return time.perf_counter() - started, latencies, sum(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeat", type=float, default=0.5, help="share of returning units")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with bench_settings() as settings:
        asyncio.run(seed(settings))
        api, port = start_api(settings, args.workers, max(args.connections, 4))
        try:
            warm, measured = build(args.requests, args.repeat, port)
            asyncio.run(drive(port, warm, args.connections))
            pids = [api.pid, *children(api.pid)]
            api_before = sum(cpu_seconds(p) for p in pids)
            backends = database_backends(settings)
            own_pg_before = sum(cpu_seconds(p) for p in backends)
            pg_before = postgres_cpu()
            own_before = time.process_time()
            load_before = os.getloadavg()[0]
            elapsed, latencies, new = asyncio.run(drive(port, measured, args.connections))
            api_cpu = sum(cpu_seconds(p) for p in pids) - api_before
            pg_cpu = postgres_cpu() - pg_before
            own_pg_cpu = sum(cpu_seconds(p) for p in backends) - own_pg_before
            own_cpu = time.process_time() - own_before
            load_after = os.getloadavg()[0]
        finally:
            api.terminate()
            try:
                api.wait(timeout=15)
            except subprocess.TimeoutExpired:
                api.kill()
    print(
        f"requests           {len(latencies)} ({args.repeat:.0%} returning units), "
        f"{new} new assignments stored"
    )
    print(f"throughput         {len(latencies) / elapsed:,.0f} requests/s")
    print(
        f"latency            p50 {percentile(latencies, 50) * 1000:.2f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(
        f"cpu                api {api_cpu / elapsed:.2f} cores, "
        f"postgres {pg_cpu / elapsed:.2f} cores (all clients)"
    )
    n = len(latencies)
    print(
        f"cpu per request    api {api_cpu / n * 1e6:.0f} us, "
        f"api's postgres backends {own_pg_cpu / n * 1e6:.0f} us ({len(backends)} backends; "
        f"all postgres {pg_cpu / n * 1e6:.0f} us), load generator {own_cpu / n * 1e6:.0f} us"
    )
    print(f"loadavg            before {load_before:.2f}, after {load_after:.2f} (2 cores, shared)")
    print(f"connections        {args.connections}, api workers {args.workers}")


if __name__ == "__main__":
    main()
