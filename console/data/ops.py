"""The console's read model for operations: the Queues and Overview screens.

Loaded through `engine.queue_admin` / `engine.heartbeat` (the arq seam), `storage.queries` and
`engine.resilience` (via `console.data.creators`); screens call these from Textual workers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from console.data.acting import acting_now
from console.data.common import NextRunCache
from console.data.creators import HEALTH_ERRORS, PlatformHealth
from console.data.creators import load_platform_health as load_platforms
from console.data.region_columns import RegionColumns
from engine import dead_letters as dead_letter_ops
from engine import heartbeat, queue_admin
from engine.queue_admin import (
    DEAD_LETTER_KIND,
    PAGE_SIZE,
    QUEUES,
    JobDetail,
    JobPage,
    JobState,
    JobSummary,
    QueueCounts,
    WorkerReport,
)
from storage.database import Database
from storage.queries import dead_letters, ingestion, partitions
from storage.queries import runs as run_queries
from storage.queries.operators import Identity
from storage.queries.regions import region_columns
from storage.settings import Settings

# Names the screens use (they reach the queues only through this read model).
__all__ = [
    "DEAD_LETTER_KIND",
    "PAGE_SIZE",
    "QUEUES",
    "JobDetail",
    "JobState",
    "JobSummary",
    "QueueCounts",
    "WorkerReport",
]

NEXT_RUNS_SHOWN = 6
LAG_RUNS = 60


@dataclass(frozen=True, slots=True)
class QueuesView:
    queue: str
    finished: bool  # the finished jobs (results) rather than the queued ones
    counts: tuple[QueueCounts, ...]  # every queue, for the selector line
    page: JobPage | None
    done: tuple[JobSummary, ...]
    scan_cursor: int


async def load_queues(
    redis: ArqRedis,
    settings: Settings,
    name: str,
    offset: int,
    finished: bool,
    page_size: int = PAGE_SIZE,
    now: datetime | None = None,
) -> QueuesView:
    """`now` (the console's clock) decides which queued jobs count as ready or deferred."""
    every = tuple(
        await asyncio.gather(
            *(queue_admin.counts(redis, settings, q, now) for q in queue_admin.QUEUES)
        )
    )
    if finished:
        done, cursor = await queue_admin.finished_jobs(redis, settings, name, want=page_size)
        return QueuesView(name, True, every, None, done, cursor)
    page = await queue_admin.list_jobs(redis, settings, name, offset, page_size, now)
    return QueuesView(name, False, every, page, (), 0)


async def job_detail(
    redis: ArqRedis, settings: Settings, queue: str, job_id: str, now: datetime
) -> JobDetail:
    return await queue_admin.job_detail(redis, settings, queue, job_id, now)


async def job_action(
    redis: ArqRedis, settings: Settings, verb: str, queue: str, job_id: str, now: datetime
) -> str:
    """Retry, abort or delete one job; what happened, in words. QueueError (a UserError) when
    the job is not in a state that allows it. `now` (the console's clock) dates a retry."""
    if verb == "retry":
        return await queue_admin.retry(redis, settings, queue, job_id, now=now)
    if verb == "abort":
        return await queue_admin.abort(redis, settings, queue, job_id)
    if verb == "delete":
        return await queue_admin.delete(redis, settings, queue, job_id)
    raise ValueError(f"no job action {verb!r}")


async def requeue_dead_letters(
    db: Database, redis: ArqRedis, settings: Settings, kind: str, actor: Identity
) -> int:
    """Requeue every pending dead letter of one kind (engine.dead_letters does the work)."""
    async with db.session() as session:
        letters = await dead_letters.list_letters(
            session, kind=kind, status="pending", limit=1_000_000
        )
    if not letters:
        return 0
    return await dead_letter_ops.requeue(
        db, redis, settings, [letter.id for letter in letters], actor=await acting_now(db, actor)
    )


@dataclass(frozen=True, slots=True)
class NextRun:
    fire: datetime
    region: str


@dataclass(frozen=True, slots=True)
class OverviewData:
    replicas: tuple[heartbeat.Replica, ...]
    workers: tuple[WorkerReport, ...]
    counts: tuple[QueueCounts, ...]
    next_runs: tuple[NextRun, ...]
    failures_1h: int
    dead_letters: int
    platforms: tuple[PlatformHealth, ...] | None  # None: could not be read
    events_per_min: tuple[int, ...] | None  # last 30 minutes, oldest first; None: no table
    lags_ms: tuple[int, ...]  # tick lag of the latest runs, oldest first
    # event_log and follower_sample: size and oldest partition (empty: could not be read)
    tables: tuple[partitions.TableSize, ...] = ()


async def load_overview(
    db: Database, redis: ArqRedis, settings: Settings, now: datetime, cache: NextRunCache
) -> OverviewData:
    replicas, workers, counts = await asyncio.gather(
        heartbeat.replicas(redis, settings),
        queue_admin.worker_reports(redis, settings),
        asyncio.gather(*(queue_admin.counts(redis, settings, q, now) for q in queue_admin.QUEUES)),
    )
    async with db.session() as session:
        record = dict(await region_columns(session))
    # Every region as columns (console.data.region_columns), never an object per region: the
    # Overview is the landing screen, and refreshes every 2 s at 100,000 regions too.
    fires = await asyncio.to_thread(_first_fires, record, now, cache)
    async with db.session() as session:
        failures = await run_queries.failures_since(session, now - timedelta(hours=1))
        letters = await dead_letters.count_letters(session, status="pending")
        recent = await run_queries.list_runs(session, region_code=None, status=None, limit=LAG_RUNS)
        events = await ingestion.events_per_minute(session, now - timedelta(minutes=30), now)
        tables = await table_sizes(session)
    try:
        platforms: tuple[PlatformHealth, ...] | None = await load_platforms(redis, settings)
    except HEALTH_ERRORS:  # Redis away, no platform configured, or invalid settings: n/a
        platforms = None
    lags = tuple(run.lag_ms for run in reversed(recent) if run.lag_ms is not None)
    return OverviewData(
        replicas=replicas,
        workers=workers,
        counts=tuple(counts),
        next_runs=tuple(fires[:NEXT_RUNS_SHOWN]),
        failures_1h=failures,
        dead_letters=letters,
        platforms=platforms,
        events_per_min=events,
        lags_ms=lags,
        tables=tables,
    )


def _first_fires(record: dict[str, Any], now: datetime, cache: NextRunCache) -> list[NextRun]:
    """(In a thread: a pass over every region) the first NEXT_RUNS_SHOWN next runs."""
    columns = RegionColumns.from_record(record, now, cache)
    return [NextRun(fire, code) for fire, code in columns.first_fires(NEXT_RUNS_SHOWN)]


async def table_sizes(session: AsyncSession) -> tuple[partitions.TableSize, ...]:
    """The partitioned tables' sizes (catalog reads only: no table is scanned)."""
    return tuple(await partitions.table_sizes(session))
