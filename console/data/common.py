"""The console's read model: what each screen shows, via storage.queries and the engine's queues.

Screens never run SQL or Redis commands; they call these functions from Textual workers. The
row types are plain frozen dataclasses so a screen can compare a fresh load with the last one and
skip redrawing when nothing changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from console.data.acting import current_actor as current_actor  # who edits, for screens
from engine import queue_admin, tick_queue
from engine.redis_keys import TICKS
from storage.database import Database
from storage.models import JobRun
from storage.models import RunStatus as RunStatus  # for the Runs screen's status filter
from storage.queries import runs as run_queries
from storage.queries.regions import list_region_summaries
from storage.queries.runs import LastRun
from storage.schedule import Schedule, ScheduleError, parse_schedule
from storage.settings import Settings
from storage.user_error import UserError

NEXT_RUNS = 3

# What a load or an edit raises when Postgres or Redis is away or refuses (a refused or timed-out
# connection is an OSError; the drivers wrap the rest). The console reports these as "could not
# reach"; anything else that is not a storage.user_error.UserError is a bug.
STORE_ERRORS: tuple[type[Exception], ...] = (OSError, SQLAlchemyError, RedisError)
# A store away, or a refusal a person can act on: what a load or edit is expected to raise.
KNOWN_ERRORS: tuple[type[Exception], ...] = (*STORE_ERRORS, UserError)
RUNS_LIMIT = 500


@dataclass(frozen=True, slots=True)
class RegionRow:
    code: str
    name: str
    cron: str
    timezone: str
    active: bool
    next_runs: tuple[datetime, ...]
    invalid: str | None  # why the schedule cannot be used, when it cannot
    last_status: str | None
    last_lag_ms: int | None
    last_scheduled: datetime | None
    # The searchable fields lowercased once, when the row is built: filtering 100,000 rows is
    # then one substring test each (~10 ms), not four lower() calls.
    search: str = field(default="", compare=False, repr=False)
    version: int = 0  # the region's version when read: what an edit of this row is made against
    # False: the latest run was not read (the region was off screen): unknown, not "never run".
    last_known: bool = True

    def matches(self, needle: str) -> bool:
        text = needle.lower()
        if self.search:
            return text in self.search
        fields = (self.code, self.name, self.cron, self.timezone)
        return any(text in part.lower() for part in fields)


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    region_code: str
    scheduled_for: datetime
    started_at: datetime | None
    lag_ms: int | None
    duration_ms: int | None
    status: str
    attempt: int
    error: str | None
    manual: bool
    worker: str | None = None
    trigger: str | None = None  # 'backfill' for a fire time an operator asked to run again
    requested_by: str | None = None

    def matches(self, needle: str) -> bool:
        text = needle.lower()
        return any(
            text in field.lower() for field in (self.region_code, self.status, self.error or "")
        )


@dataclass(frozen=True, slots=True)
class EngineStatus:
    ready: int
    deferred: int
    running: int
    alive: bool
    health: str | None  # arq's health-check line, when an engine reported lately


RowT = TypeVar("RowT", RegionRow, RunRow)


@lru_cache(maxsize=4096)
def checked_schedule(cron: str, timezone: str) -> Schedule | str:
    """The schedule, or the reason it cannot be used (cached: validation costs ~0.1 ms)."""
    try:
        return parse_schedule(cron, timezone)
    except ScheduleError as exc:
        return str(exc)
    except (OSError, ValueError, KeyError):
        # zoneinfo raises IsADirectoryError for a partial name like "America" (as typed).
        return f"unknown timezone {timezone!r} (use an IANA name like UTC or America/Detroit)"


class NextRunCache:
    """Next fire times per (cron, timezone), recomputed only once the first of them has passed.

    Thousands of regions share a handful of schedules, and a schedule's next fires do not change
    between two refreshes two seconds apart, so a refresh costs a dict lookup per region.
    """

    def __init__(self, count: int = NEXT_RUNS) -> None:
        self.count = count
        self._fires: dict[tuple[str, str], tuple[datetime, ...]] = {}

    def next_runs(self, schedule: Schedule, now: datetime) -> tuple[datetime, ...]:
        key = (schedule.cron, schedule.timezone)
        fires = self._fires.get(key)
        if fires is None or fires[0] <= now:
            fires = tuple(schedule.next_fires(now, self.count))
            self._fires[key] = fires
        return fires


def region_rows(
    regions: Iterable[Iterable[Any]],  # (code, name, cron, timezone, active, version)
    last_runs: dict[str, LastRun],
    now: datetime,
    cache: NextRunCache,
) -> list[RegionRow]:
    rows = []
    for code, name, cron, timezone, active, version in regions:
        checked = checked_schedule(cron, timezone)
        last = last_runs.get(code)
        rows.append(
            RegionRow(
                code=code,
                name=name,
                cron=cron,
                timezone=timezone,
                active=active,
                next_runs=cache.next_runs(checked, now) if isinstance(checked, Schedule) else (),
                invalid=checked if isinstance(checked, str) else None,
                last_status=last.status if last else None,
                last_lag_ms=last.lag_ms if last else None,
                last_scheduled=last.scheduled_for if last else None,
                search=search_text(code, name, cron, timezone),
                version=version,
            )
        )
    return rows


def search_text(code: str, name: str, cron: str, timezone: str) -> str:
    return "\0".join((code, name, cron, timezone)).lower()


async def load_regions(
    db: Database, now: datetime, cache: NextRunCache, *, last_runs: bool = True
) -> list[RegionRow]:
    """Every region with its next runs (and, unless `last_runs` is False, its latest run: a
    DISTINCT ON over the whole ledger, ~150 ms at 10,000 regions; the Regions screen reads
    only the regions on screen instead, see console.data.regions)."""
    # Plain column rows, not ORM objects: 10,000 regions load in a fraction of the time.
    async with db.session() as session:
        regions = await list_region_summaries(session)
        last = await run_queries.last_run_summary_per_region(session) if last_runs else {}
    # The per-row work runs in a thread so the UI loop keeps answering keys meanwhile.
    return await asyncio.to_thread(region_rows, regions, last, now, cache)


def run_row(run: JobRun) -> RunRow:
    return RunRow(
        id=run.id,
        region_code=run.region_code or "",
        scheduled_for=run.scheduled_for,
        started_at=run.started_at,
        lag_ms=run.lag_ms,
        duration_ms=run.duration_ms,
        status=run.status,
        attempt=run.attempt,
        error=run.error,
        manual=run.manual,
        worker=run.worker,
        trigger=run.trigger,
        requested_by=run.requested_by,
    )


async def load_runs(
    db: Database, *, region_code: str | None, status: str | None, limit: int = RUNS_LIMIT
) -> list[RunRow]:
    async with db.session() as session:
        runs = await run_queries.list_runs(
            session, region_code=region_code, status=status, limit=limit
        )
    return [run_row(run) for run in runs]


async def load_engine_status(
    redis: ArqRedis, settings: Settings, now: datetime | None = None
) -> EngineStatus:
    depth = await queue_admin.counts(redis, settings, TICKS, now)
    health = await tick_queue.engine_health(redis, settings)
    return EngineStatus(
        ready=depth.ready,
        deferred=depth.deferred,
        running=depth.running,
        alive=health is not None,
        health=health,
    )


def filtered(rows: Sequence[RowT], needle: str) -> list[RowT]:
    return [row for row in rows if row.matches(needle)] if needle else list(rows)
