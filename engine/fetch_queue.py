"""The arq seam for creator fetches: job ids, batched enqueue, queue depth.

One job per (tick run, batch): `{prefix}:fetch:{run_id}:{batch_no}`; a dead letter sent back
gets `{prefix}:fetch:requeue:{letter_id}:{stamp}`. Same rules as `engine.queue` for ticks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job

from engine import queue
from storage.settings import Settings

FETCH = "fetch"
FETCH_FUNCTION = "fetch_batch"
CHUNK = 2000


def queue_name(settings: Settings) -> str:
    return queue.queue_name(settings, FETCH)


def health_check_key(settings: Settings) -> str:
    return queue.health_check_key(settings, FETCH)


def fetch_job_id(settings: Settings, run_id: int, batch_no: int) -> str:
    return f"{settings.redis_prefix}:fetch:{run_id}:{batch_no}"


def requeue_job_id(settings: Settings, letter_id: int, stamp: int) -> str:
    return f"{settings.redis_prefix}:fetch:requeue:{letter_id}:{stamp}"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A batch of one platform's creators to refresh in one sampling slot."""

    job_id: str
    run_id: int  # 0: not part of a tick (a requeued dead letter)
    batch_no: int
    platform: str
    slot_ts: int
    creator_ids: list[int]
    defer_until_ms: int | None = None

    def args(self) -> tuple[int, int, str, int, list[int]]:
        return (self.run_id, self.batch_no, self.platform, self.slot_ts, self.creator_ids)


async def enqueue_fetches(redis: ArqRedis, settings: Settings, jobs: list[FetchRequest]) -> int:
    """Enqueue fetch jobs in pipelined chunks; an id already queued, running or done is kept."""
    if not jobs:
        return 0
    name = queue_name(settings)
    now_ms = int(time.time() * 1000)
    script = redis.register_script(queue._ENQUEUE_IF_ABSENT)
    added = 0
    for start in range(0, len(jobs), CHUNK):
        async with redis.pipeline(transaction=False) as pipe:
            for job in jobs[start : start + CHUNK]:
                score = max(job.defer_until_ms or now_ms, now_ms)
                payload = serialize_job(FETCH_FUNCTION, job.args(), {}, None, now_ms)
                expires = score - now_ms + queue.EXPIRES_EXTRA_MS
                await script(
                    keys=[job_key_prefix + job.job_id, result_key_prefix + job.job_id, name],
                    args=[payload, score, expires, job.job_id],
                    client=pipe,
                )
            results = await pipe.execute()
        added += sum(int(r) for r in results)
    return added


async def depth(redis: ArqRedis, settings: Settings) -> queue.QueueDepth:
    return await queue.queue_depth(redis, settings, FETCH)
