"""Helpers for engine tests: runtimes, regions, and running real arq workers until a condition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from engine.queue_specs import SPECS
from engine.redis_keys import TICKS
from engine.runtime import Runtime
from engine.worker import build_worker
from storage.database import Database
from storage.models import Region
from storage.settings import Settings


@asynccontextmanager
async def runtime(settings: Settings, name: str | None = None) -> AsyncIterator[Runtime]:
    rt = await Runtime.connect(settings)
    if name:
        rt.name = name
    try:
        yield rt
    finally:
        await rt.close()


async def add_region(db: Database, code: str, cron: str, **fields: Any) -> Region:
    fields.setdefault("schedule_since", datetime.now(UTC))
    region = Region(code=code, name=code.title(), cron=cron, **fields)
    async with db.session() as session:
        session.add(region)
        await session.commit()
    return region


async def set_region(db: Database, code: str, **fields: Any) -> None:
    """Write a region row directly (as psql would), bypassing validation."""
    assignments = ", ".join(f"{name} = :{name}" for name in fields)
    async with db.engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE region SET {assignments} WHERE code = :code"), {"code": code, **fields}
        )


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.05
) -> None:
    """Wait until `check()` is true; fail with a clear message after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


@asynccontextmanager
async def running_worker(rt: Runtime) -> AsyncIterator[None]:
    """A real arq worker on the tick queue, in this event loop, for the duration of the block."""
    worker = build_worker(rt, SPECS[TICKS])
    task = asyncio.create_task(worker.main())
    try:
        yield
    finally:
        worker.allow_pick_jobs = False
        pending = [t for t in worker.tasks.values() if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def ledger(db: Database, code: str | None = None) -> list[dict[str, Any]]:
    query = "SELECT * FROM job_run"
    params: dict[str, Any] = {}
    if code:
        query += " WHERE region_code = :code"
        params["code"] = code
    async with db.engine.connect() as conn:
        rows = await conn.execute(text(query + " ORDER BY region_code, scheduled_for"), params)
        return [dict(row._mapping) for row in rows]
