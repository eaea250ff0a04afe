"""Shared set-up for benchmarks: a fresh database and Redis prefix, on given or embedded servers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

import migrations
from storage.database import plain_dsn
from storage.embedded.servers import EmbeddedServers
from storage.settings import Settings


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def bench_settings(**overrides: Any) -> Iterator[Settings]:
    """Settings pointing at a throw-away database and key prefix; both removed afterwards."""
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    folder = None
    embedded = None
    if not database_url or not redis_url:
        folder = Path(tempfile.mkdtemp(prefix="cdbench-"))
        embedded = EmbeddedServers(folder).start(not database_url, not redis_url)
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    run = uuid.uuid4().hex[:8]
    name = f"creatordeck_bench_{run}"
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        redis_prefix=f"cdbench-{run}",
        _env_file=None,
        **overrides,
    )
    try:
        yield settings
    finally:
        asyncio.run(_cleanup(settings, database_url, name))
        if embedded is not None:
            embedded.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


async def _cleanup(settings: Settings, admin_url: str, name: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis_url or "")
    for pattern in (f"{settings.redis_prefix}:*", f"arq:*:{settings.redis_prefix}:*"):
        keys = [k async for k in client.scan_iter(match=pattern, count=5000)]
        for start in range(0, len(keys), 5000):
            await client.delete(*keys[start : start + 5000])
    await client.aclose()
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (
        f"p50={percentile(values, 50):.0f} p99={percentile(values, 99):.0f} "
        f"max={max(values):.0f} mean={statistics.fmean(values):.0f}"
    )


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    """Until `url` answers (any status below 500); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def postgres_cpu() -> float:
    """CPU seconds of every local postgres process (shared with other users of the server)."""
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return sum(cpu_seconds(int(pid)) for pid in out.split())


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `creatordeck` child process on the bench's database and Redis prefix."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        REDIS_PREFIX=settings.redis_prefix,
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def start_cli(
    args: list[str], env: dict[str, str], output: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`creatordeck ARGS...` as a child in its own session: a Ctrl-C reaches the bench only."""
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", *args],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_all(procs: list[subprocess.Popen[bytes]], timeout_s: float = 40) -> None:
    """SIGTERM every child still running, wait for each, and kill one that overstays."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_api(
    settings: Settings, workers: int, pool_size: int
) -> tuple[subprocess.Popen[bytes], int]:
    """`creatordeck api` on a free loopback port, answering /health; returns it and its port."""
    port = free_port()
    env = process_env(settings, DB_POOL_SIZE=str(pool_size))
    api = start_cli(["api", "--port", str(port), "--workers", str(workers)], env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
    except RuntimeError:
        api.kill()
        raise SystemExit("the api did not start") from None
    return api, port


class LoopStalls:
    """How late a 5 ms ticker on the running event loop wakes: the loop's stalls, in seconds.

    `start()` on the loop under test, `await stop()` after the work; `gaps` holds one lateness
    per wake-up (a stall of 40 ms delays every key press in that moment by as much).
    """

    def __init__(self, period_s: float = 0.005) -> None:
        self.period_s = period_s
        self.gaps: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, period_s: float = 0.005) -> LoopStalls:
        probe = cls(period_s)
        probe._task = asyncio.get_running_loop().create_task(probe._tick())
        return probe

    async def _tick(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(self.period_s)
            now = time.perf_counter()
            self.gaps.append(now - last - self.period_s)
            last = now

    async def stop(self) -> list[float]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return sorted(self.gaps)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, float]:
    """One raw HTTP/1.1 keep-alive request: the 200 response's body and the seconds it took.

    Load generators write prebuilt requests by hand: an HTTP client library would cost more CPU
    than the server under test.
    """
    started = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    elapsed = time.perf_counter() - started
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"api answered {head.splitlines()[0]!r}: {body[:300]!r}")
    return body, elapsed


async def _noop(ctx: dict[str, Any]) -> None:
    return None


async def _arq_noop_rate(settings: Settings, jobs: int) -> float:
    from arq.worker import Worker, func

    from engine import queues, redis_keys

    redis = await queues.connect(settings)
    name = redis_keys.queue_key(settings, "bench-noop")
    try:
        now_ms = int(time.time() * 1000)
        await queues.enqueue_if_absent(
            redis,
            name,
            (
                queues.NewJob(f"{settings.redis_prefix}:noop:{n}", "noop", (), now_ms)
                for n in range(jobs)
            ),
        )
        # arq's own worker with its defaults (max_jobs=10), polling as fast as it likes.
        worker = Worker(
            functions=[func(_noop, name="noop")],
            queue_name=name,
            redis_pool=redis,
            burst=True,
            poll_delay=0.0,
            handle_signals=False,
            keep_result=0,
        )
        started = time.perf_counter()
        await worker.async_run()
        elapsed = time.perf_counter() - started
        done = worker.jobs_complete
    finally:
        await redis.aclose()
    return done / elapsed


def arq_noop_ceiling(settings: Settings, jobs: int = 3000) -> float:
    """Jobs/s arq's own worker runs in this process, no-op jobs: the baseline every engine
    bench prints beside its figure (a job carrying many items must beat it by that many)."""
    return asyncio.run(_arq_noop_rate(settings, jobs))


async def database_backend_pids(settings: Settings) -> list[int]:
    """Pids of the Postgres backends connected to the bench's own database (its pools)."""
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(r[0]) for r in rows]


def database_backends(settings: Settings) -> list[int]:
    """`database_backend_pids` from outside an event loop."""
    return asyncio.run(database_backend_pids(settings))
