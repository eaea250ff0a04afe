"""The arq seam for creator fetches: job ids, batched enqueue, queue depth.

One job per (tick run, batch): `{prefix}:fetch:{run_id}:{batch_no}`; a dead letter sent back
gets `{prefix}:fetch:requeue:{letter_id}:{stamp}`. Jobs are created through engine.queues (the
same rules for every queue).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from arq.connections import ArqRedis

from engine import queue_admin, queues, redis_keys
from storage.settings import Settings

FETCH = redis_keys.FETCH
FETCH_FUNCTION = "fetch_batch"


def queue_name(settings: Settings) -> str:
    return redis_keys.queue_key(settings, FETCH)


def health_check_key(settings: Settings) -> str:
    return redis_keys.health_check_key(settings, FETCH)


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
    """Enqueue fetch jobs; an id already queued, running or done is kept."""
    now_ms = int(time.time() * 1000)
    return await queues.enqueue_if_absent(
        redis,
        queue_name(settings),
        (
            queues.NewJob(
                job.job_id, FETCH_FUNCTION, job.args(), max(job.defer_until_ms or now_ms, now_ms)
            )
            for job in jobs
        ),
    )


async def depth(redis: ArqRedis, settings: Settings) -> queue_admin.QueueCounts:
    return await queue_admin.counts(redis, settings, FETCH)
