"""engine.queue_admin against the real Redis of the test run, with a real arq worker where a job
has to run (to leave a result or a traceback behind)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix
from arq.worker import Worker, func
from redis.asyncio import Redis

from engine import fetch_queue, queue_admin, queues, redis_keys, tick_queue
from engine.queue_admin import JobState, QueueError
from engine.tick_queue import TickRequest, enqueue_ticks
from storage.settings import Settings

FAR = datetime.now(UTC) + timedelta(days=400)


async def _ticks(redis: Any, settings: Settings) -> list[str]:
    """Two deferred ticks and one manual (ready now); returns their ids in run-at order."""
    requests = [
        TickRequest("DETROIT_METRO", FAR),
        TickRequest("CHICAGO_METRO", FAR + timedelta(hours=1)),
        TickRequest("NASHVILLE", datetime.now(UTC), manual=True),
    ]
    assert await enqueue_ticks(redis, settings, requests) == 3
    return [tick_queue.tick_job_id(settings, r.region_code, r.fire, r.manual) for r in requests]


async def test_list_jobs_pages_in_run_at_order_with_counts(
    redis: Redis, test_settings: Settings
) -> None:
    detroit, chicago, nashville = await _ticks(redis, test_settings)
    page = await queue_admin.list_jobs(redis, test_settings, "ticks", 0, 2)
    assert page.counts.total == 3
    assert (page.counts.ready, page.counts.deferred, page.counts.running) == (1, 2, 0)
    assert [j.job_id for j in page.jobs] == [nashville, detroit]
    first = page.jobs[0]
    assert first.function == "tick" and first.state is JobState.READY
    # A manual run: (fire time, no shard, the one region, manual).
    assert ", None, ['NASHVILLE'], True" in first.args
    assert first.tries == 0 and first.enqueued_at is not None
    assert page.jobs[1].state is JobState.DEFERRED
    rest = await queue_admin.list_jobs(redis, test_settings, "ticks", 2, 2)
    assert [j.job_id for j in rest.jobs] == [chicago]
    # An offset past the end shows the last page rather than nothing.
    past = await queue_admin.list_jobs(redis, test_settings, "ticks", 10, 2)
    assert past.offset == 1 and len(past.jobs) == 2
    # Other queues are separate.
    fetches = await queue_admin.list_jobs(redis, test_settings, "fetch")
    assert fetches.counts.total == 0 and fetches.jobs == ()


async def test_running_jobs_are_counted_and_cannot_be_retried_aborted_or_deleted(
    redis: Redis, test_settings: Settings
) -> None:
    _, _, nashville = await _ticks(redis, test_settings)
    await redis.set(in_progress_key_prefix + nashville, b"1", px=60_000)  # as arq's worker does
    page = await queue_admin.list_jobs(redis, test_settings, "ticks")
    assert page.jobs[0].state is JobState.RUNNING
    assert (page.counts.ready, page.counts.running) == (0, 1)
    for action in (queue_admin.retry, queue_admin.abort, queue_admin.delete):
        with pytest.raises(QueueError, match="running"):
            await action(redis, test_settings, "ticks", nashville)
    assert await redis.exists(job_key_prefix + nashville)


async def test_abort_and_delete_take_a_queued_job_out(
    redis: Redis, test_settings: Settings
) -> None:
    detroit, chicago, _ = await _ticks(redis, test_settings)
    outcome = await queue_admin.abort(redis, test_settings, "ticks", detroit)
    assert "removed from the queue" in outcome
    assert await redis.zscore(tick_queue.queue_name(test_settings), detroit) is None
    assert not await redis.exists(job_key_prefix + detroit)
    with pytest.raises(QueueError, match="not queued"):
        await queue_admin.abort(redis, test_settings, "ticks", detroit)
    assert await queue_admin.delete(redis, test_settings, "ticks", chicago) == "deleted"
    assert (await queue_admin.counts(redis, test_settings, "ticks")).total == 1


async def test_retry_moves_a_deferred_job_to_now(redis: Redis, test_settings: Settings) -> None:
    detroit, _, _ = await _ticks(redis, test_settings)
    before = int(time.time() * 1000)
    assert await queue_admin.retry(redis, test_settings, "ticks", detroit) == "moved to run now"
    score = await redis.zscore(tick_queue.queue_name(test_settings), detroit)
    assert score is not None and before <= score <= time.time() * 1000
    page = await queue_admin.list_jobs(redis, test_settings, "ticks")
    assert {j.job_id: j.state for j in page.jobs}[detroit] is JobState.READY


class PlatformDown(Exception):
    pass


async def _fails(
    ctx: dict[str, Any], fire: int, shard: int | None, codes: list[str], manual: bool
) -> None:
    raise PlatformDown(f"platform down for {codes[0]}")


async def _works(ctx: dict[str, Any], *args: Any) -> dict[str, int]:
    return {"rows": 3}


async def _run_queue(redis: Any, settings: Settings, name: str, function: Any, fname: str) -> None:
    worker = Worker(
        functions=[func(function, name=fname, max_tries=1)],
        queue_name=redis_keys.queue_key(settings, name),
        redis_pool=redis,
        burst=True,
        poll_delay=0.01,
        handle_signals=False,
        keep_result=60,
    )
    await worker.async_run()  # burst: runs what is due, then returns (the pool stays ours)


async def test_detail_shows_the_traceback_and_retry_enqueues_a_finished_job_again(
    test_settings: Settings, redis: Redis
) -> None:
    arq_redis = await queues.connect(test_settings)
    try:
        # One "now" for the id and the request: ids carry the second, which may tick between.
        now = datetime.now(UTC)
        job_id = tick_queue.tick_job_id(test_settings, "NASHVILLE", now, manual=True)
        await enqueue_ticks(arq_redis, test_settings, [TickRequest("NASHVILLE", now, True)])
        await _run_queue(arq_redis, test_settings, "ticks", _fails, "tick")
        assert await redis.exists(result_key_prefix + job_id)
        detail = await queue_admin.job_detail(arq_redis, test_settings, "ticks", job_id)
        assert detail.success is False and detail.summary.state is JobState.FAILED
        assert detail.result is not None
        assert "PlatformDown: platform down for NASHVILLE" in detail.result
        assert detail.started_at is not None and detail.finished_at is not None
        done, _ = await queue_admin.finished_jobs(arq_redis, test_settings, "ticks")
        assert [(j.job_id, j.state) for j in done] == [(job_id, JobState.FAILED)]
        assert (await queue_admin.finished_jobs(arq_redis, test_settings, "fetch"))[0] == ()

        outcome = await queue_admin.retry(arq_redis, test_settings, "ticks", job_id)
        assert outcome == "enqueued again to run now"
        assert not await redis.exists(result_key_prefix + job_id)
        page = await queue_admin.list_jobs(arq_redis, test_settings, "ticks")
        assert [(j.job_id, j.state, j.function) for j in page.jobs] == [
            (job_id, JobState.READY, "tick")
        ]
        # It runs again: this time the worker succeeds and the detail shows the result.
        await _run_queue(arq_redis, test_settings, "ticks", _works, "tick")
        detail = await queue_admin.job_detail(arq_redis, test_settings, "ticks", job_id)
        assert detail.success is True and detail.result == "{'rows': 3}"
        with pytest.raises(QueueError, match="no result"):
            await queue_admin.job_detail(arq_redis, test_settings, "ticks", "nope")
    finally:
        await arq_redis.aclose()


async def test_args_are_redacted_where_secret(redis: Redis, test_settings: Settings) -> None:
    arq_redis = await queues.connect(test_settings)
    try:
        await arq_redis.enqueue_job(
            "publish",
            7,
            "Bearer abc.def",
            "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8",
            _job_id=f"{test_settings.redis_prefix}:publish:7:1",
            _queue_name=redis_keys.queue_key(test_settings, "publish"),
            access_token="secret-value",
            options={"api_key": "k", "region": "DETROIT_METRO"},
        )
        page = await queue_admin.list_jobs(arq_redis, test_settings, "publish")
        (job,) = page.jobs
        assert "secret-value" not in job.args and "abc.def" not in job.args
        assert "a1b2c3d4e5f6" not in job.args
        assert "access_token='<redacted>'" in job.args
        assert "'api_key': '<redacted>'" in job.args and "DETROIT_METRO" in job.args
        assert job.args.startswith("7, '<redacted>', '<redacted>'")
    finally:
        await arq_redis.aclose()


async def test_fetch_queue_counts_and_unknown_queue(redis: Redis, test_settings: Settings) -> None:
    jobs = [
        fetch_queue.FetchRequest(
            fetch_queue.fetch_job_id(test_settings, 1, n), 1, n, "mock", 0, [n]
        )
        for n in range(5)
    ]
    arq_redis = await queues.connect(test_settings)
    try:
        await fetch_queue.enqueue_fetches(arq_redis, test_settings, jobs)
    finally:
        await arq_redis.aclose()
    counts = await queue_admin.counts(redis, test_settings, "fetch")
    assert (counts.total, counts.ready, counts.deferred, counts.running) == (5, 5, 0, 0)
    with pytest.raises(QueueError, match="no queue 'nope'"):
        await queue_admin.counts(redis, test_settings, "nope")


def test_health_line_is_parsed() -> None:
    line = "Nov-23 15:42:20 j_complete=12 j_failed=2 j_retried=3 j_ongoing=1 queued=40"
    report = queue_admin.parse_health("ticks", line)
    assert (report.complete, report.failed, report.retried, report.ongoing, report.queued) == (
        12,
        2,
        3,
        1,
        40,
    )
    assert queue_admin.parse_health("ticks", None).complete == 0
