"""Real Postgres and real Redis for every test: a fresh database and key prefix per run.

DATABASE_URL / REDIS_URL point at servers to use; when unset, embedded ones start in a temp folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

import migrations
from storage.database import Database, plain_dsn
from storage.embedded.servers import EmbeddedServers
from storage.models import Base
from storage.settings import Settings

RUN_ID = uuid.uuid4().hex[:8]
# The console reads an operator's settings file; tests must not depend on the developer's.
os.environ["CREATORDECK_CONSOLE_CONFIG"] = os.devnull + ".absent"


@pytest.fixture(scope="session")
def server_urls() -> Iterator[tuple[str, str]]:
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    embedded: EmbeddedServers | None = None
    folder: Path | None = None
    if not database_url or not redis_url:
        folder = Path(tempfile.mkdtemp(prefix="cdtest-"))
        embedded = EmbeddedServers(folder).start(
            need_postgres=not database_url, need_redis=not redis_url
        )
        database_url = database_url or embedded.database_url
        redis_url = redis_url or embedded.redis_url
    try:
        yield database_url, redis_url
    finally:
        if embedded is not None:
            embedded.stop()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _outside_loop(fn: Callable[[], object]) -> None:
    """Run blocking setup (asyncio.run inside) in a thread: pytest's event loop may be running."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def test_settings(server_urls: tuple[str, str]) -> Iterator[Settings]:
    admin_url, redis_url = server_urls
    name = f"creatordeck_test_{RUN_ID}"
    _outside_loop(lambda: asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"')))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    _outside_loop(lambda: migrations.upgrade(url))
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        redis_prefix=f"cdtest-{RUN_ID}",
        env="test",
        engine={"tick_timeout_s": 5, "shutdown_grace_s": 5},
        _env_file=None,  # type: ignore[call-arg]
    )
    try:
        yield settings
    finally:
        _outside_loop(
            lambda: asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        )


@pytest.fixture(scope="session")
async def db(test_settings: Settings) -> AsyncIterator[Database]:
    database = Database(test_settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def redis(test_settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(test_settings.redis_url or "")
    yield client
    await _delete_prefix(client, test_settings.redis_prefix)
    await client.aclose()


async def _delete_prefix(client: Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"arq:*:{prefix}:*"):
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)


@pytest.fixture(autouse=True)
async def clean_state(test_settings: Settings, db: Database, redis: Redis) -> AsyncIterator[None]:
    """Every test starts with empty tables and no keys under the run's prefix."""
    async with db.engine.begin() as conn:
        existing = set(
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            )
            .scalars()
            .all()
        )
        names = [t.name for t in Base.metadata.sorted_tables if t.name in existing]
        if names:
            tables = ", ".join(f'"{name}"' for name in names)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await _delete_prefix(redis, test_settings.redis_prefix)
    yield


def engine_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `creatordeck` subprocess needs to join this test run."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        REDIS_PREFIX=settings.redis_prefix,
        ENV="test",
        TICK_TIMEOUT_S=str(settings.engine.tick_timeout_s),
        METRICS_PORT="0",
        SHUTDOWN_GRACE_S=str(settings.engine.shutdown_grace_s),
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    env.update(extra)
    return env
