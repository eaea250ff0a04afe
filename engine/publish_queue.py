"""The arq seam for publishing: job ids, enqueue, removal, and rebuilding the queue from Postgres.

One deferred job per publication and generation: `{prefix}:publish:{publication}:{generation}`.
The generation changes with every reschedule, retry, deferral and cancel (see
storage.models.publishing), so a job id is never reused for a different plan and an old job that
still runs finds itself stale. Jobs are created through engine.queues (the same rules for every
queue).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from engine import logs, queues, redis_keys
from engine.runtime import Runtime
from storage.models import PublicationStatus
from storage.queries import publishing
from storage.queries.publishing import JobChange, JobRef
from storage.settings import Settings

PUBLISH = redis_keys.PUBLISH
PUBLISH_FUNCTION = "publish"
CHUNK = 2000
MAX_PUBLISH_TIMEOUT_S = 60

log = logs.get("engine.publish_queue")


def queue_name(settings: Settings) -> str:
    return redis_keys.queue_key(settings, PUBLISH)


def health_check_key(settings: Settings) -> str:
    return redis_keys.health_check_key(settings, PUBLISH)


def publish_timeout_s(settings: Settings) -> float:
    """A publish job's time limit. Never more than a tick's (tests shorten both)."""
    return float(min(MAX_PUBLISH_TIMEOUT_S, settings.engine.tick_timeout_s))


def publish_job_id(settings: Settings, publication_id: int, generation: int) -> str:
    return f"{settings.redis_prefix}:publish:{publication_id}:{generation}"


def parse_publish_job_id(settings: Settings, job_id: str) -> tuple[int, int] | None:
    head = f"{settings.redis_prefix}:publish:"
    if not job_id.startswith(head):
        return None
    pub, _, gen = job_id[len(head) :].partition(":")
    if not pub.isdigit() or not gen.isdigit():
        return None
    return int(pub), int(gen)


async def enqueue_publications(redis: ArqRedis, settings: Settings, jobs: list[JobRef]) -> int:
    """Enqueue deferred publish jobs; an id that exists (queued, running or done) is left alone."""
    return await queues.enqueue_if_absent(
        redis,
        queue_name(settings),
        (
            queues.NewJob(
                publish_job_id(settings, job.publication_id, job.generation),
                PUBLISH_FUNCTION,
                (job.publication_id, job.generation),
                max(int(job.due_at.timestamp() * 1000), 0),
            )
            for job in jobs
        ),
    )


async def remove_publish_jobs(
    redis: ArqRedis, settings: Settings, jobs: list[tuple[int, int]]
) -> int:
    """Take (publication, generation) jobs out of the queue; one already running checks itself."""
    if not jobs:
        return 0
    ids = [publish_job_id(settings, pub, gen) for pub, gen in jobs]
    removed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(queue_name(settings), *chunk)
            pipe.delete(*(redis_keys.job_key(job_id) for job_id in chunk))
            count, _ = await pipe.execute()
        removed += int(count)
    return removed


async def apply(redis: ArqRedis, settings: Settings, change: JobChange) -> None:
    """Make the queue follow a committed change. If Redis fails here, reconcile() catches up."""
    await remove_publish_jobs(redis, settings, change.remove)
    await enqueue_publications(redis, settings, change.enqueue)


async def queued_jobs(redis: ArqRedis, settings: Settings) -> list[tuple[int, int]]:
    """(publication, generation) of every job in the publish queue."""
    raw = await redis.zrange(queue_name(settings), 0, -1)
    refs = (parse_publish_job_id(settings, item.decode()) for item in raw)
    return [ref for ref in refs if ref is not None]


@dataclass
class PublishReconcile:
    pending: int = 0
    enqueued: int = 0
    removed: int = 0


async def reconcile(rt: Runtime, orphan_after_s: float | None = None) -> PublishReconcile:
    """Rebuild the publish queue from Postgres (after Redis lost its jobs, say).

    Every scheduled publication gets its job (absent ids only). A publication left PUBLISHING
    longer than `orphan_after_s` lost its worker and its job: it gets its job back, and the job
    takes it over verify-first. Jobs of older generations are removed.
    """
    if orphan_after_s is None:
        # arq re-delivers a killed worker's job after its time limit + 10 s; wait a bit longer.
        orphan_after_s = publish_timeout_s(rt.settings) + 15
    report = PublishReconcile()
    queued = await queued_jobs(rt.redis, rt.settings)
    async with rt.db.session() as session:
        pending = await publishing.pending_publications(session)
        current = await publishing.current_generations(session, (pub for pub, _ in queued))
    report.pending = len(pending)
    now = datetime.now(UTC)
    orphan_before = now - timedelta(seconds=orphan_after_s)
    wanted: list[JobRef] = []
    for item in pending:
        if item.status == PublicationStatus.SCHEDULED.value:
            wanted.append(JobRef(item.publication_id, item.generation, item.due_at or now))
        elif item.started_at is None or item.started_at < orphan_before:
            wanted.append(JobRef(item.publication_id, item.generation, now))
    stale = [(pub, gen) for pub, gen in queued if current.get(pub) != gen]
    report.removed = await remove_publish_jobs(rt.redis, rt.settings, stale)
    report.enqueued = await enqueue_publications(rt.redis, rt.settings, wanted)
    if report.enqueued or report.removed:
        log.info("publish.reconciled", **vars(report))
    return report
