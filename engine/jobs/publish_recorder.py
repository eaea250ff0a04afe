"""Confirmed publications of every batch job in one process, written together.

A batch send appends its confirmed row (`Done`) to `rows`; while any batch job runs, one loop
writes what is there every FLUSH_S in ONE statement (`mark_published_many`) and flushes the
breaker tallies. A job, as it ends, writes what is pending (`finish`). One loop per process, not
one per job: with 50 batch jobs in flight, per-job loops woke 1,000 times a second and wrote as
many small statements.

Invariants:
- a row is taken off `rows` with no await between the copy and the delete: none is lost or
  written twice by this process (and the statement is conditional on PUBLISHING and the
  generation, so a second write would change nothing anyway);
- a write that fails (Postgres down) leaves its rows PUBLISHING in Postgres, as a worker killed
  between send and record would: the re-delivered job or the scheduler's reconcile takes them
  over, verify-first. Every job running when a write failed fails too as it ends (`finish`
  raises), so arq retries it and the take-over comes soon, as when each job wrote its own.
- no job running, no loop: an idle engine pays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from engine import logs
from storage.queries import publishing
from storage.queries.publishing import Done

log = logs.get("engine.publish_recorder")
FLUSH_S = 0.05  # confirmed publications are written at least this often while a batch runs


class Recorder:
    def __init__(self, engine: AsyncEngine, flush_tallies: Callable[[], Awaitable[None]]) -> None:
        self.rows: list[Done] = []
        self._engine = engine
        self._flush_tallies = flush_tallies
        self._lock = asyncio.Lock()
        self._jobs: dict[int, BaseException | None] = {}  # running job -> a failed write
        self._next_job = 0
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> int:
        """A batch job starts: its token for `finish`; the loop runs while any job does."""
        self._next_job += 1
        self._jobs[self._next_job] = None
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run())
        return self._next_job

    async def finish(self, job: int) -> None:
        """A batch job ends: write what is pending; raise if any write failed while it ran."""
        try:
            await self.flush()
        finally:
            failed = self._jobs.pop(job, None)
        if failed is not None:
            raise failed

    async def _run(self) -> None:
        while self._jobs:
            await asyncio.sleep(FLUSH_S)
            with contextlib.suppress(Exception):  # logged and handed to the jobs by flush()
                await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch = self.rows[:]
            del self.rows[: len(batch)]  # no await between the copy and this: no row is lost
            try:
                await self._flush_tallies()
                if batch:
                    async with publishing.autocommit(self._engine) as conn:
                        await publishing.mark_published_many(conn, batch)
            except Exception as exc:
                log.warning("publish_recorder.write_failed", rows=len(batch), error=repr(exc))
                for job in self._jobs:
                    self._jobs[job] = exc
                raise

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
