"""The arq seam for publishing: job ids, enqueue, removal, and rebuilding the queue from Postgres.

A publish job carries (publication, generation) pairs, never anything else:

- a single job, `{prefix}:publish:{publication}:{generation}`, for a publication on its own
  (a console edit, a retry, a deferral, a post with a few accounts);
- a batch job, `{prefix}:publish-batch:{due ms}:{digest}`, for the publications due at the same
  instant when at least BATCH_MIN of them are enqueued together (a burst, a rebuild from
  Postgres). Pairs are ordered by (account, publication) and cut into batches of at most
  BATCH_SIZE, so a batch is mostly one account's (one token, one limiter call); the digest is
  of the sorted pairs, so every replica that enqueues the same publications makes one job.

The generation changes with every reschedule, retry, deferral and cancel (see
storage.models.publishing), so a job id is never reused for a different plan and an old job that
still runs finds itself stale: a batch skips each stale pair on its own. Removing a pair takes
its single job out; a batch job that holds it stays and skips it (a batch is removed only when
every pair in it is stale, by `reconcile`). Jobs are created through engine.queues
(the same rules for every queue).

Reading which pairs are queued (`queued_pairs`) costs one ZRANGE plus one MGET per
CHUNK batch jobs (their arguments live in the job payloads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby

from arq.connections import ArqRedis
from arq.jobs import deserialize_job

from engine import logs, queues, redis_keys
from engine.runtime import Runtime
from storage.models import PublicationStatus
from storage.queries import publishing
from storage.queries.publishing import JobChange, JobRef
from storage.settings import Settings

PUBLISH = redis_keys.PUBLISH
PUBLISH_FUNCTION = "publish"
PUBLISH_BATCH_FUNCTION = "publish_batch"
CHUNK = 2000
# At least this many publications due at one instant go as batch jobs (fewer: single jobs, which
# a console edit can remove one by one); a batch holds at most BATCH_SIZE, all sent at once.
BATCH_MIN = 8
BATCH_SIZE = 100
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


def batch_job_id(settings: Settings, due_ms: int, pairs: Iterable[tuple[int, int]]) -> str:
    text = ",".join(f"{pub}:{gen}" for pub, gen in sorted(pairs))
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{settings.redis_prefix}:publish-batch:{due_ms}:{digest}"


def is_batch_job_id(settings: Settings, job_id: str) -> bool:
    return job_id.startswith(f"{settings.redis_prefix}:publish-batch:")


def _due_ms(job: JobRef) -> int:
    return max(int(job.due_at.timestamp() * 1000), 0)


def plan_jobs(
    settings: Settings, jobs: Iterable[JobRef], batch_min: int = BATCH_MIN
) -> Iterator[queues.NewJob]:
    """The arq jobs for these publications (pure): singles, or batches per due instant."""
    ordered = sorted(jobs, key=lambda j: (_due_ms(j), j.connection_id or 0, j.publication_id))
    for due_ms, group in groupby(ordered, key=_due_ms):
        refs = list(group)
        if len(refs) < batch_min:
            for job in refs:
                yield queues.NewJob(
                    publish_job_id(settings, job.publication_id, job.generation),
                    PUBLISH_FUNCTION,
                    (job.publication_id, job.generation),
                    due_ms,
                )
            continue
        for start in range(0, len(refs), BATCH_SIZE):
            pairs = [(j.publication_id, j.generation) for j in refs[start : start + BATCH_SIZE]]
            yield queues.NewJob(
                batch_job_id(settings, due_ms, pairs), PUBLISH_BATCH_FUNCTION, (pairs,), due_ms
            )


async def enqueue_publications(
    redis: ArqRedis, settings: Settings, jobs: list[JobRef], batch_min: int = BATCH_MIN
) -> int:
    """Enqueue deferred publish jobs (batched as `plan_jobs` says); an id that exists (queued,
    running or done) is left alone. Returns the number of jobs created."""
    return await queues.enqueue_if_absent(
        redis, queue_name(settings), plan_jobs(settings, jobs, batch_min)
    )


async def remove_publish_jobs(
    redis: ArqRedis, settings: Settings, jobs: list[tuple[int, int]]
) -> int:
    """Take (publication, generation) jobs out of the queue; one already running checks itself."""
    if not jobs:
        return 0
    return await remove_batch_jobs(
        redis, settings, [publish_job_id(settings, pub, gen) for pub, gen in jobs]
    )


async def apply(redis: ArqRedis, settings: Settings, change: JobChange) -> None:
    """Make the queue follow a committed change. If Redis fails here, reconcile() catches up."""
    await remove_publish_jobs(redis, settings, change.remove)
    await enqueue_publications(redis, settings, change.enqueue)


async def queued_jobs(redis: ArqRedis, settings: Settings) -> list[tuple[int, int]]:
    """(publication, generation) of every single job in the publish queue."""
    raw = await redis.zrange(queue_name(settings), 0, -1)
    refs = (parse_publish_job_id(settings, item.decode()) for item in raw)
    return [ref for ref in refs if ref is not None]


async def queued_batches(redis: ArqRedis, settings: Settings) -> dict[str, list[tuple[int, int]]]:
    """The pairs of every batch job in the publish queue, by job id (read from the payloads)."""
    raw = await redis.zrange(queue_name(settings), 0, -1)
    ids = [item.decode() for item in raw if is_batch_job_id(settings, item.decode())]
    batches: dict[str, list[tuple[int, int]]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        payloads = await redis.mget([redis_keys.job_key(job_id) for job_id in chunk])
        for job_id, payload in zip(chunk, payloads, strict=True):
            if payload is None:  # finished meanwhile
                continue
            (pairs,) = deserialize_job(payload).args
            batches[job_id] = [(int(pub), int(gen)) for pub, gen in pairs]
    return batches


async def queued_pairs(redis: ArqRedis, settings: Settings) -> list[tuple[int, int]]:
    """(publication, generation) of every pair the publish queue holds, single or batched."""
    pairs = await queued_jobs(redis, settings)
    for batch in (await queued_batches(redis, settings)).values():
        pairs.extend(batch)
    return pairs


async def remove_batch_jobs(redis: ArqRedis, settings: Settings, job_ids: list[str]) -> int:
    """Take these jobs (single or batch ids) and their payloads out of the publish queue."""
    removed = 0
    for start in range(0, len(job_ids), CHUNK):
        chunk = job_ids[start : start + CHUNK]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(queue_name(settings), *chunk)
            pipe.delete(*(redis_keys.job_key(job_id) for job_id in chunk))
            count, _ = await pipe.execute()
        removed += int(count)
    return removed


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
    batches = await queued_batches(rt.redis, rt.settings)
    batched = [pair for pairs in batches.values() for pair in pairs]
    async with rt.db.session() as session:
        pending = await publishing.pending_publications(session)
        current = await publishing.current_generations(
            session, [pub for pub, _ in (*queued, *batched)]
        )
    report.pending = len(pending)
    now = datetime.now(UTC)
    orphan_before = now - timedelta(seconds=orphan_after_s)
    covered = set(batched)  # a live batch job will claim these (single ids dedupe by id)
    wanted: list[JobRef] = []
    for item in pending:
        pair = (item.publication_id, item.generation)
        if item.status == PublicationStatus.SCHEDULED.value:
            if pair not in covered:
                due = item.due_at or now
                wanted.append(JobRef(*pair, due, item.connection_id))
        elif item.started_at is None or item.started_at < orphan_before:
            wanted.append(JobRef(*pair, now, item.connection_id))
    stale = [(pub, gen) for pub, gen in queued if current.get(pub) != gen]
    dead = [
        job_id
        for job_id, pairs in batches.items()
        if all(current.get(pub) != gen for pub, gen in pairs)
    ]
    report.removed = await remove_publish_jobs(rt.redis, rt.settings, stale)
    report.removed += await remove_batch_jobs(rt.redis, rt.settings, dead)
    report.enqueued = await enqueue_publications(rt.redis, rt.settings, wanted)
    if report.enqueued or report.removed:
        log.info("publish.reconciled", **vars(report))
    return report
