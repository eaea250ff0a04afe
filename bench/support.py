"""Shared set-up for benchmarks: a fresh database and Redis prefix, on given or embedded servers."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

import migrations
from storage.database import plain_dsn
from storage.embedded import EmbeddedServers
from storage.settings import Settings


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def bench_settings(**overrides: object) -> Iterator[Settings]:
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
    )  # type: ignore[call-arg]
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
