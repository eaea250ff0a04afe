"""Inspecting and administering our arq queues: arq has no dashboard, this is ours.

Part of the arq seam: the keys (`arq:job:`, `arq:in-progress:`, `arq:result:`, `arq:retry:`,
the abort set, our queues) come from engine.redis_keys; nothing here spells one. The console lists
jobs page by page, opens one, and retries, aborts or deletes it through these functions.

Cost model (a queue may hold 100,000 jobs): a page is one ZRANGE by index with LIMIT-like bounds
plus one pipelined round trip for the page's job, retry and in-progress keys; counts are ZCARD /
ZCOUNT. Finished jobs (arq's result keys, kept for an hour) are found with a bounded SCAN.
Never KEYS, never a read of the whole queue.
"""

from __future__ import annotations

import re
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from arq.jobs import DeserializationError, deserialize_job_raw, deserialize_result, serialize_job
from redis.asyncio import Redis

from engine import redis_keys
from engine.job_args import describe_call, redact
from engine.queues import EXPIRES_EXTRA_MS
from engine.redis_keys import QUEUES as QUEUES  # the console lists them from here
from engine.redis_keys import in_progress_key, job_key, result_key, retry_key
from storage.settings import Settings
from storage.user_error import UserError

# Queues whose worker runs with arq's allow_abort_jobs: a running job there can be cancelled
# through arq's `arq:abort` set. None of ours does today (engine.worker), so aborting a running
# job is refused with the reason, and a queued one is simply taken out of the queue.
ABORTABLE: frozenset[str] = frozenset()

# Dead-letter kind of the work each queue carries (storage.queries.dead_letters), if any.
DEAD_LETTER_KIND: dict[str, str] = {redis_keys.FETCH: "fetch"}

PAGE_SIZE = 100  # a table page: DataTable measures every cell it holds
# Running jobs are found among the head of the due jobs (workers take jobs from the head).
RUNNING_PROBE = 1000
RESULT_SCAN_COUNT = 1000
RESULT_SCAN_CALLS = 50


class JobState(StrEnum):
    DEFERRED = "deferred"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    GONE = "gone"  # in the queue without its job key (expired), or not found at all


class QueueError(UserError):
    """An admin action that cannot be done, with the reason a person can act on."""

    title = "queue action refused"


def queue_key(settings: Settings, name: str) -> str:
    if name not in QUEUES:
        raise QueueError(f"no queue {name!r}: ours are {', '.join(QUEUES)}")
    return redis_keys.queue_key(settings, name)


def _ms_to_dt(ms: float | int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, UTC)


def _now_ms(now: datetime | None) -> int:
    """Ready vs deferred is judged against `now` (the console's clock), else the real clock."""
    return int(now.timestamp() * 1000) if now is not None else int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class JobSummary:
    queue: str
    job_id: str
    function: str
    args: str  # redacted, one line
    tries: int
    enqueued_at: datetime | None
    run_at: datetime | None
    state: JobState


@dataclass(frozen=True, slots=True)
class QueueCounts:
    queue: str
    total: int
    ready: int
    deferred: int
    running: int
    running_exact: bool  # False: more due jobs than RUNNING_PROBE, running counted at the head


@dataclass(frozen=True, slots=True)
class JobPage:
    counts: QueueCounts
    offset: int
    jobs: tuple[JobSummary, ...]


@dataclass(frozen=True, slots=True)
class JobDetail:
    summary: JobSummary
    kwargs: str
    started_at: datetime | None
    finished_at: datetime | None
    success: bool | None
    result: str | None  # the return value, or the exception with whatever traceback it carries
    abortable: bool


def _tries(payload_try: int | None, retry_raw: bytes | None) -> int:
    started = int(retry_raw) if retry_raw else 0
    return max(started, payload_try or 0)


def _summary(
    name: str,
    job_id: str,
    score: float | None,
    raw: bytes | None,
    retry_raw: bytes | None,
    running: bool,
    now_ms: int,
) -> JobSummary:
    function, args, enqueued = "?", "(job key expired)", None
    tries = int(retry_raw) if retry_raw else 0
    if raw is not None:
        try:
            fn, a, kw, job_try, et = deserialize_job_raw(raw)
        except DeserializationError as exc:
            args = f"(unreadable: {exc})"
        else:
            function, args, enqueued = fn, describe_call("", a, kw)[1:-1], _ms_to_dt(et)
            tries = _tries(job_try, retry_raw)
    if running:
        state = JobState.RUNNING
    elif raw is None:
        state = JobState.GONE
    elif score is not None and score > now_ms:
        state = JobState.DEFERRED
    else:
        state = JobState.READY
    return JobSummary(name, job_id, function, args, tries, enqueued, _ms_to_dt(score), state)


# Ready, deferred and running of a queue in one server-side step. Running jobs are found among
# the first ARGV[2] due ids (workers take jobs from the head of the queue), so the cost stays
# flat however long the queue is. KEYS[1]: the queue; ARGV: now ms, probe size, in-progress prefix.
_COUNTS = """
local total = redis.call('ZCARD', KEYS[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
local head = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local running = 0
for _, id in ipairs(head) do
  running = running + redis.call('EXISTS', ARGV[3] .. id)
end
return {total, due, running}
"""


async def counts(
    redis: Redis, settings: Settings, name: str, now: datetime | None = None
) -> QueueCounts:
    """Ready / deferred / running of one queue in one round trip, whatever its length."""
    key = queue_key(settings, name)
    now_ms = _now_ms(now)
    script = redis.register_script(_COUNTS)
    total, due, running = await script(
        keys=[key], args=[now_ms, RUNNING_PROBE, redis_keys.IN_PROGRESS_PREFIX]
    )
    return QueueCounts(
        queue=name,
        total=int(total),
        ready=max(int(due) - int(running), 0),
        deferred=int(total) - int(due),
        running=int(running),
        running_exact=int(due) <= RUNNING_PROBE,
    )


async def list_jobs(
    redis: Redis,
    settings: Settings,
    name: str,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
) -> JobPage:
    """One page of a queue in run-at order (soonest first)."""
    key = queue_key(settings, name)
    offset = max(offset, 0)
    limit = max(min(limit, 1000), 1)
    page_counts = await counts(redis, settings, name, now)
    if offset >= page_counts.total and page_counts.total:
        offset = max(page_counts.total - limit, 0)
    entries = await redis.zrange(key, offset, offset + limit - 1, withscores=True)
    ids = [raw.decode() for raw, _ in entries]
    jobs: list[JobSummary] = []
    if ids:
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.get(job_key(job_id))
                pipe.get(retry_key(job_id))
                pipe.exists(in_progress_key(job_id))
            values = await pipe.execute()
        now_ms = _now_ms(now)
        for i, (job_id, (_, score)) in enumerate(zip(ids, entries, strict=True)):
            raw, retry_raw, running = values[3 * i : 3 * i + 3]
            jobs.append(_summary(name, job_id, score, raw, retry_raw, bool(running), now_ms))
    return JobPage(page_counts, offset, tuple(jobs))


def _describe_result(success: bool, result: Any) -> str:
    if success:
        text = repr(redact(result))
        return text if len(text) <= 4000 else text[:3999] + "…"
    if isinstance(result, BaseException):
        # arq pickles the exception, which drops its traceback; keep what survives: the chain.
        return "".join(traceback.format_exception(result)).strip()
    return f"failed: {result!r}"


async def job_detail(
    redis: Redis, settings: Settings, name: str, job_id: str, now: datetime | None = None
) -> JobDetail:
    """A job with its arguments and, once finished, its result or exception."""
    key = queue_key(settings, name)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(job_key(job_id))
        pipe.get(retry_key(job_id))
        pipe.exists(in_progress_key(job_id))
        pipe.zscore(key, job_id)
        pipe.get(result_key(job_id))
        raw, retry_raw, running, score, result_raw = await pipe.execute()
    now_ms = _now_ms(now)
    summary = _summary(name, job_id, score, raw, retry_raw, bool(running), now_ms)
    kwargs = ""
    if raw is not None:
        try:
            _, _, kw, _, _ = deserialize_job_raw(raw)
            kwargs = repr(redact(kw))
        except DeserializationError:
            pass
    if result_raw is None:
        if raw is None and score is None:
            raise QueueError(f"job {job_id} is not in queue {name} and has no result (kept 1 h)")
        return JobDetail(summary, kwargs, None, None, None, None, _abortable(name, summary))
    try:
        res = deserialize_result(result_raw)
    except DeserializationError as exc:
        text = f"result unreadable here ({exc.__cause__ or exc}); the worker's log has it"
        return JobDetail(summary, kwargs, None, None, False, text, False)
    done = JobSummary(
        name,
        job_id,
        res.function,
        describe_call("", res.args, res.kwargs)[1:-1],
        res.job_try,
        res.enqueue_time,
        summary.run_at,
        summary.state
        if summary.state in (JobState.RUNNING, JobState.READY, JobState.DEFERRED)
        else (JobState.DONE if res.success else JobState.FAILED),
    )
    return JobDetail(
        done,
        repr(redact(res.kwargs)),
        res.start_time,
        res.finish_time,
        res.success,
        _describe_result(res.success, res.result),
        _abortable(name, done),
    )


def _abortable(name: str, summary: JobSummary) -> bool:
    if summary.state is JobState.RUNNING:
        return name in ABORTABLE
    return summary.state in (JobState.READY, JobState.DEFERRED, JobState.GONE)


async def finished_jobs(
    redis: Redis,
    settings: Settings,
    name: str,
    cursor: int = 0,
    want: int = PAGE_SIZE,
) -> tuple[tuple[JobSummary, ...], int]:
    """Finished jobs of a queue (arq keeps results an hour), found by SCAN in bounded steps.

    Returns the jobs found and the cursor to continue from (0: the scan went round).
    """
    match = redis_keys.result_pattern(settings)
    found: list[JobSummary] = []
    calls = 0
    qname = queue_key(settings, name)
    while True:
        cursor, keys = await redis.scan(cursor=cursor, match=match, count=RESULT_SCAN_COUNT)
        calls += 1
        if keys:
            values = await redis.mget(keys)
            for k, v in zip(keys, values, strict=True):
                if v is None:
                    continue
                try:
                    res = deserialize_result(v)
                except DeserializationError:
                    continue
                if res.queue_name != qname:
                    continue
                found.append(
                    JobSummary(
                        name,
                        k.decode()[len(redis_keys.RESULT_PREFIX) :],
                        res.function,
                        describe_call("", res.args, res.kwargs)[1:-1],
                        res.job_try,
                        res.enqueue_time,
                        res.finish_time,
                        JobState.DONE if res.success else JobState.FAILED,
                    )
                )
        if cursor == 0 or len(found) >= want or calls >= RESULT_SCAN_CALLS:
            break
    found.sort(key=lambda j: j.run_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return tuple(found), int(cursor)


async def retry(
    redis: Redis, settings: Settings, name: str, job_id: str, now: datetime | None = None
) -> str:
    """Run a job now (`now`: the console's clock, else the real one): a queued one moves to the
    head; a finished one is enqueued again under its id (its result is dropped). A running one
    is refused. Returns what was done."""
    key = queue_key(settings, name)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(in_progress_key(job_id))
        pipe.zscore(key, job_id)
        pipe.exists(job_key(job_id))
        pipe.get(result_key(job_id))
        running, score, has_job, result_raw = await pipe.execute()
    now_ms = _now_ms(now)
    if running:
        raise QueueError(f"{job_id} is running now; wait for it to finish, then retry")
    if score is not None and has_job:
        await redis.zadd(key, {job_id: now_ms}, xx=True)
        return "moved to run now"
    if result_raw is None:
        raise QueueError(f"{job_id}: no job and no result left to retry from (results kept 1 h)")
    try:
        res = deserialize_result(result_raw)
    except DeserializationError as exc:
        raise QueueError(f"{job_id}: its result cannot be read here ({exc})") from exc
    payload = serialize_job(res.function, res.args, res.kwargs, None, now_ms)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(result_key(job_id), retry_key(job_id))
        pipe.psetex(job_key(job_id), EXPIRES_EXTRA_MS, payload)
        pipe.zadd(key, {job_id: now_ms})
        await pipe.execute()
    return "enqueued again to run now"


async def abort(redis: Redis, settings: Settings, name: str, job_id: str) -> str:
    """Stop a job. Not started yet: it is taken out of the queue. Running: cancelled through
    arq's abort set where the queue's worker allows it, otherwise refused with the reason."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(in_progress_key(job_id))
        pipe.zscore(queue_key(settings, name), job_id)
        running, score = await pipe.execute()
    if running:
        if name not in ABORTABLE:
            raise QueueError(
                f"{job_id} is running and the {name} worker does not allow aborts "
                "(arq allow_abort_jobs is off); it will finish or time out"
            )
        # arq's abort set has a fixed name shared by every arq app (it cannot be namespaced).
        await redis.zadd(redis_keys.ABORT_JOBS, {job_id: int(time.time() * 1000)})
        return "abort requested (the worker cancels it within a poll)"
    if score is None:
        raise QueueError(f"{job_id} is not queued (finished or gone): nothing to abort")
    await _remove(redis, settings, name, job_id)
    return "not running: removed from the queue"


async def delete(redis: Redis, settings: Settings, name: str, job_id: str) -> str:
    """Forget a job: out of the queue, its job, retry and result keys gone. A running job is
    refused (arq would write its result back)."""
    if await redis.exists(in_progress_key(job_id)):
        raise QueueError(f"{job_id} is running; abort it or wait, then delete")
    removed = await _remove(redis, settings, name, job_id)
    return "deleted" if removed else "deleted (it was no longer queued)"


async def _remove(redis: Redis, settings: Settings, name: str, job_id: str) -> int:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(queue_key(settings, name), job_id)
        pipe.delete(job_key(job_id), retry_key(job_id), result_key(job_id))
        removed, _ = await pipe.execute()
    return int(removed)


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """arq's health-check line of a queue's workers (the last worker to report writes it)."""

    queue: str
    line: str | None
    complete: int
    failed: int
    retried: int
    ongoing: int
    queued: int


_HEALTH_FIELD = re.compile(r"(j_complete|j_failed|j_retried|j_ongoing|queued)=(\d+)")


def parse_health(name: str, line: str | None) -> WorkerReport:
    values = dict(_HEALTH_FIELD.findall(line or ""))
    return WorkerReport(
        name,
        line,
        int(values.get("j_complete", 0)),
        int(values.get("j_failed", 0)),
        int(values.get("j_retried", 0)),
        int(values.get("j_ongoing", 0)),
        int(values.get("queued", 0)),
    )


async def worker_reports(redis: Redis, settings: Settings) -> tuple[WorkerReport, ...]:
    """Each queue's health-check line (present while a worker of it runs: it expires)."""
    keys = [redis_keys.health_check_key(settings, name) for name in QUEUES]
    lines = await redis.mget(keys)
    return tuple(
        parse_health(name, raw.decode() if raw else None)
        for name, raw in zip(QUEUES, lines, strict=True)
    )
