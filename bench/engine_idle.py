"""What an idle engine costs, and how soon it starts a job that becomes due.

    python -m bench.engine_idle [--seconds 30] [--regions 100]

One `creatordeck engine` (all roles, defaults) against a private `redis-server` (so every
command counted is the engine's) and the given Postgres, with regions that fire next year:
nothing is due. Measured over `--seconds`: the engine's CPU (% of one core) and Redis
commands/s (`total_commands_processed`). Then, with the engine still idle: a manual tick
enqueued now, and a job deferred 2 s ahead; each one's start latency is read from the run
ledger (started_at - enqueue time / due time). Floors: < 2% of a core, < 50 commands/s, a new
job started within 100 ms. Printed beside them: arq's no-op ceiling measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis

from bench.support import arq_noop_ceiling, bench_settings, cpu_seconds, free_port, machine
from engine import queues, tick_queue
from storage.database import plain_dsn
from storage.embedded.servers import redis_server_binary
from storage.settings import Settings


async def _seed(settings: Settings, regions: int) -> None:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        await conn.executemany(
            "INSERT INTO region (code, name, cron) VALUES ($1, $1, '0 3 1 1 *')",
            [(f"IDLE{i:04d}",) for i in range(regions)],
        )
    finally:
        await conn.close()


async def _commands(url: str) -> int:
    client = Redis.from_url(url)
    try:
        stats = await client.info("stats")
    finally:
        await client.aclose()
    return int(stats["total_commands_processed"])


async def _started_at(settings: Settings, code: str, timeout: float = 10) -> datetime:
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await conn.fetchval(
                "SELECT started_at FROM job_run WHERE region_code = $1 AND started_at IS NOT NULL",
                code,
            )
            if found is not None:
                return found  # type: ignore[no-any-return]
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    raise SystemExit(f"FAIL: the tick of {code} did not start within {timeout}s")


async def _start_latency(settings: Settings) -> tuple[float, float]:
    """(ms from enqueue to start of a job due now, ms from due time to start of a deferred one)"""
    redis = await queues.connect(settings)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        enqueued = datetime.now(UTC)
        await tick_queue.enqueue_ticks(
            redis, settings, [tick_queue.TickRequest("IDLE0000", now, True)]
        )
        first = (await _started_at(settings, "IDLE0000") - enqueued).total_seconds() * 1000
        due_ms = int(time.time() * 1000) + 2000
        job = queues.NewJob(
            tick_queue.tick_job_id(settings, "IDLE0001", now, True),
            tick_queue.TICK_FUNCTION,
            (int(now.timestamp()), None, ["IDLE0001"], True),
            due_ms,
        )
        await queues.enqueue_if_absent(redis, tick_queue.queue_name(settings), [job])
        started = await _started_at(settings, "IDLE0001")
        second = started.timestamp() * 1000 - due_ms
    finally:
        await redis.aclose()
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--regions", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    folder = tempfile.mkdtemp(prefix="cdidle-")
    server = subprocess.Popen(
        [
            *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    redis_url = f"redis://127.0.0.1:{port}/0"
    os.environ["REDIS_URL"] = redis_url
    engine: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)
        with bench_settings() as settings:
            ceiling = arq_noop_ceiling(settings)
            asyncio.run(_seed(settings, args.regions))
            env = dict(
                os.environ,
                DATABASE_URL=settings.database_url or "",
                REDIS_URL=redis_url,
                REDIS_PREFIX=settings.redis_prefix,
                LOG_LEVEL="WARNING",
                METRICS_PORT="0",
            )
            engine = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "engine"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(8)  # start-up: connect, first reconcile, workers subscribed
            cmds0, cpu0, t0 = (
                asyncio.run(_commands(redis_url)),
                cpu_seconds(engine.pid),
                time.time(),
            )
            time.sleep(args.seconds)
            cmds1, cpu1, t1 = (
                asyncio.run(_commands(redis_url)),
                cpu_seconds(engine.pid),
                time.time(),
            )
            elapsed = t1 - t0
            cpu_pct = (cpu1 - cpu0) / elapsed * 100
            rate = (cmds1 - cmds0 - 2) / elapsed  # minus our own two INFO calls
            now_ms, deferred_ms = asyncio.run(_start_latency(settings))
            print(f"machine: {machine()}")
            print(f"idle engine over {elapsed:.0f} s, {args.regions} regions, nothing due:")
            print(f"  CPU: {cpu_pct:.2f}% of a core      (floor < 2%)")
            print(f"  Redis: {rate:.1f} commands/s        (floor < 50)")
            print(f"  a job due now started after {now_ms:.0f} ms (enqueue to ledger claim)")
            print(f"  a job deferred 2 s started {deferred_ms:.0f} ms after its due time")
            print(f"baseline: arq no-op ceiling {ceiling:.0f} jobs/s (same run, one process)")
            failed = cpu_pct >= 2 or rate >= 50 or max(now_ms, deferred_ms) >= 100
            engine.send_signal(signal.SIGTERM)
            engine.wait(timeout=40)
            engine = None
            if failed:
                raise SystemExit("FAIL: a floor is missed")
    finally:
        if engine is not None and engine.poll() is None:
            engine.kill()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
