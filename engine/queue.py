"""The seam around arq: job ids, enqueueing, removal and queue inspection.

The rest of the code speaks of ticks; only this module knows arq's Redis keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job

from storage.settings import Settings

TICKS = "ticks"
TICK_FUNCTION = "tick"
CHUNK = 2000  # jobs per pipelined round trip
# A job not started within a day of its time is dropped; the scheduler re-creates what is owed.
EXPIRES_EXTRA_MS = 86_400_000

# Same rule as arq's enqueue_job (no job, no result under that id), but one round trip per batch.
_ENQUEUE_IF_ABSENT = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4])
return 1
"""


def queue_name(settings: Settings, queue: str = TICKS) -> str:
    return f"{settings.redis_prefix}:queue:{queue}"


def health_check_key(settings: Settings, queue: str = TICKS) -> str:
    return f"{queue_name(settings, queue)}:health-check"


@dataclass(frozen=True, slots=True)
class TickRef:
    """A tick as it sits in the queue."""

    job_id: str
    region_code: str
    fire: datetime
    manual: bool


def tick_job_id(settings: Settings, region_code: str, fire: datetime, manual: bool = False) -> str:
    stamp = int(fire.timestamp())
    suffix = ":manual" if manual else ""
    return f"{settings.redis_prefix}:tick:{region_code}:{stamp}{suffix}"


def parse_tick_job_id(settings: Settings, job_id: str) -> TickRef | None:
    head = f"{settings.redis_prefix}:tick:"
    if not job_id.startswith(head):
        return None
    rest = job_id[len(head) :]
    manual = rest.endswith(":manual")
    if manual:
        rest = rest[: -len(":manual")]
    code, _, stamp = rest.rpartition(":")
    if not code or not stamp.isdigit():
        return None
    return TickRef(job_id, code, datetime.fromtimestamp(int(stamp), UTC), manual)


async def connect(settings: Settings, retries: int = 5) -> ArqRedis:
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not set and no embedded server was started")
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    redis_settings.conn_retries = retries
    pool: ArqRedis = await create_pool(
        redis_settings,
        default_queue_name=queue_name(settings),
        expires_extra_ms=EXPIRES_EXTRA_MS,
    )
    return pool


@dataclass(frozen=True, slots=True)
class TickRequest:
    region_code: str
    fire: datetime
    manual: bool = False


@dataclass(frozen=True, slots=True)
class NewJob:
    """An arq job to create unless its id exists: what every queue of ours enqueues."""

    job_id: str
    function: str
    args: tuple[Any, ...]
    run_at_ms: int


async def enqueue_if_absent(redis: ArqRedis, queue: str, jobs: Iterable[NewJob]) -> int:
    """Create jobs whose id has no job and no result yet (arq's rule), a chunk per round trip.

    Returns how many were created; the rest already existed (queued, running or done).
    """
    script = redis.register_script(_ENQUEUE_IF_ABSENT)
    now_ms = int(time.time() * 1000)
    pending = list(jobs)
    added = 0
    for start in range(0, len(pending), CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for job in pending[start : start + CHUNK]:
                payload = serialize_job(job.function, job.args, {}, None, now_ms)
                expires = max(job.run_at_ms - now_ms, 0) + EXPIRES_EXTRA_MS
                await script(
                    keys=[job_key_prefix + job.job_id, result_key_prefix + job.job_id, queue],
                    args=[payload, job.run_at_ms, expires, job.job_id],
                    client=pipe,
                )
            results = await pipe.execute()
        added += sum(int(r) for r in results)
    return added


async def enqueue_ticks(redis: ArqRedis, settings: Settings, ticks: list[TickRequest]) -> int:
    """Enqueue tick jobs to run at their fire time; an id that exists (queued, running or done)
    is left alone. A manual tick's fire time is the moment it was asked for, by the caller's
    clock (the console's `now`), so it is ready at once."""
    return await enqueue_if_absent(
        redis,
        queue_name(settings),
        (
            NewJob(
                job_id=tick_job_id(settings, tick.region_code, tick.fire, tick.manual),
                function=TICK_FUNCTION,
                args=(tick.region_code, int(tick.fire.timestamp()), tick.manual),
                run_at_ms=int(tick.fire.timestamp() * 1000),
            )
            for tick in ticks
        ),
    )


async def pending_ticks(redis: ArqRedis, settings: Settings) -> list[TickRef]:
    """Every tick in the queue: deferred, ready, or running (arq removes a job when it ends)."""
    ids = await redis.zrange(queue_name(settings), 0, -1)
    refs = (parse_tick_job_id(settings, raw.decode()) for raw in ids)
    return [ref for ref in refs if ref is not None]


async def remove_jobs(redis: ArqRedis, settings: Settings, job_ids: list[str]) -> int:
    """Take jobs out of the queue. A job a worker already runs finishes; the tick checks itself."""
    if not job_ids:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(queue_name(settings), *job_ids)
        pipe.delete(*(job_key_prefix + job_id for job_id in job_ids))
        removed, _ = await pipe.execute()
    return int(removed)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    ready: int
    deferred: int
    running: int


async def queue_depth(
    redis: ArqRedis, settings: Settings, queue: str = TICKS, now: datetime | None = None
) -> QueueDepth:
    """Ready / deferred / running of one queue in one round trip (no keyspace SCAN); ready
    means due by `now` (default: the real clock)."""
    # queue_admin owns the counting script and imports this module, hence the late import.
    from engine import queue_admin

    counted = await queue_admin.counts(redis, settings, queue, now)
    return QueueDepth(ready=counted.ready, deferred=counted.deferred, running=counted.running)


async def engine_health(redis: ArqRedis, settings: Settings) -> str | None:
    """arq's health-check line of the tick workers, or None when no engine reported lately."""
    raw = await redis.get(health_check_key(settings))
    return raw.decode() if raw else None
