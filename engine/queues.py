"""The generic part of the arq seam: connecting to the queues' Redis and creating jobs.

Every queue of ours (engine.tick_queue, .fetch_queue, .publish_queue) creates its jobs through
`enqueue_if_absent`: a job whose id already has a job or a result is left alone (arq's rule), a
chunk of jobs per pipelined round trip, and an enqueue that created something publishes on the
queue's wake channel, so idle workers sleep instead of polling (engine.worker). Keys come from
engine.redis_keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import serialize_job

from engine import redis_keys
from storage.settings import Settings

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


async def connect(settings: Settings, retries: int = 5) -> ArqRedis:
    """An arq pool on REDIS_URL; its default queue is the tick queue."""
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not set and no embedded server was started")
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    redis_settings.conn_retries = retries
    pool: ArqRedis = await create_pool(
        redis_settings,
        default_queue_name=redis_keys.queue_key(settings, redis_keys.TICKS),
        expires_extra_ms=EXPIRES_EXTRA_MS,
    )
    return pool


@dataclass(frozen=True, slots=True)
class NewJob:
    """An arq job to create unless its id exists: what every queue of ours enqueues."""

    job_id: str
    function: str
    args: tuple[Any, ...]
    run_at_ms: int


async def enqueue_if_absent(redis: ArqRedis, queue: str, jobs: Iterable[NewJob]) -> int:
    """Create jobs whose id has no job and no result yet (arq's rule), a chunk per round trip.

    `queue` is the queue's full key (redis_keys.queue_key). Returns how many were created; the
    rest already existed (queued, running or done).
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
                    keys=[
                        redis_keys.job_key(job.job_id),
                        redis_keys.result_key(job.job_id),
                        queue,
                    ],
                    args=[payload, job.run_at_ms, expires, job.job_id],
                    client=pipe,
                )
            results = await pipe.execute()
        added += sum(int(r) for r in results)
    if added:
        await redis.publish(redis_keys.wake_channel(queue), b"1")
    return added


async def job_states(redis: ArqRedis, job_ids: Iterable[str]) -> dict[str, str]:
    """Where each job id stands: `queued` (its job exists: waiting or running), `ended` (only
    its result is left) or `gone` (neither: never made, expired, or Redis lost it). Two EXISTS
    per id, a chunk per pipelined round trip."""
    ids = list(job_ids)
    states: dict[str, str] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.exists(redis_keys.job_key(job_id))
                pipe.exists(redis_keys.result_key(job_id))
            found = await pipe.execute()
        for i, job_id in enumerate(chunk):
            job, result = found[2 * i], found[2 * i + 1]
            states[job_id] = "queued" if job else "ended" if result else "gone"
    return states
