"""arq worker settings for the engine's queues."""

from __future__ import annotations

from arq.worker import Function, Worker, func

from engine import fetch_queue, publish_queue, queue
from engine.jobs import fetch as fetch_job
from engine.jobs import publish as publish_job
from engine.jobs.rollups import build_rollup_worker as build_rollup_worker  # rollups queue + cron
from engine.jobs.tick import tick
from engine.platforms.config import get_tracking_settings
from engine.runtime import Runtime

HEALTH_CHECK_INTERVAL_S = 5
# arq starts at most `max_jobs` jobs per poll and then sleeps this long: with short jobs the
# poll delay, not the work, bounds throughput (at 0.1 s: 40 ticks/s with CONCURRENCY=4).
POLL_DELAY_S = 0.01
KEEP_RESULT_S = 3600
# Retries come from Retry (buffered ticks, database down) and from killed workers; the ledger
# keeps the effect single, so the number only bounds a job that never succeeds.
TICK_MAX_TRIES = 1000
# Publish retries are planned in Postgres (new generation, new job); arq retries only cover a
# database outage and a killed worker, and the claim keeps those single.
PUBLISH_MAX_TRIES = 1000
# Publish jobs mostly wait on the platform's answer: many fit in one concurrency slot.
PUBLISH_JOBS_PER_SLOT = 10


def functions(rt: Runtime) -> list[Function]:
    return [
        func(
            tick,
            name=queue.TICK_FUNCTION,
            max_tries=TICK_MAX_TRIES,
            timeout=rt.settings.tick_timeout_s,
        ),
    ]


def build_worker(rt: Runtime) -> Worker:
    return Worker(
        functions=functions(rt),
        queue_name=queue.queue_name(rt.settings),
        redis_pool=rt.redis,
        ctx={"runtime": rt},
        handle_signals=False,
        max_jobs=rt.settings.concurrency,
        job_timeout=rt.settings.tick_timeout_s,
        keep_result=KEEP_RESULT_S,
        poll_delay=POLL_DELAY_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        health_check_key=queue.health_check_key(rt.settings),
        retry_jobs=True,
        expires_extra_ms=queue.EXPIRES_EXTRA_MS,
    )


def build_publish_worker(rt: Runtime) -> Worker:
    """The worker of the publish queue (engine.publish_queue)."""
    timeout = publish_queue.publish_timeout_s(rt.settings)
    return Worker(
        functions=[
            func(
                publish_job.publish,
                name=publish_queue.PUBLISH_FUNCTION,
                max_tries=PUBLISH_MAX_TRIES,
                timeout=timeout,
            )
        ],
        queue_name=publish_queue.queue_name(rt.settings),
        redis_pool=rt.redis,
        ctx={"runtime": rt},
        on_startup=publish_job.on_startup,
        handle_signals=False,
        max_jobs=rt.settings.concurrency * PUBLISH_JOBS_PER_SLOT,
        job_timeout=timeout,
        keep_result=KEEP_RESULT_S,
        poll_delay=POLL_DELAY_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        health_check_key=publish_queue.health_check_key(rt.settings),
        retry_jobs=True,
        expires_extra_ms=queue.EXPIRES_EXTRA_MS,
    )


def build_fetch_worker(rt: Runtime) -> Worker:
    """The worker of the creator fetch queue (engine.fetch_queue); jobs defer, not fail."""
    tracking = get_tracking_settings()
    timeout = rt.settings.tick_timeout_s
    return Worker(
        functions=[
            func(
                fetch_job.fetch_batch,
                name=fetch_queue.FETCH_FUNCTION,
                max_tries=tracking.fetch_max_tries,
                timeout=timeout,
            )
        ],
        queue_name=fetch_queue.queue_name(rt.settings),
        redis_pool=rt.redis,
        ctx={"runtime": rt},
        on_startup=fetch_job.on_startup,
        on_shutdown=fetch_job.on_shutdown,
        handle_signals=False,
        max_jobs=tracking.fetch_jobs,
        job_timeout=timeout,
        keep_result=KEEP_RESULT_S,
        poll_delay=0.05,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        health_check_key=fetch_queue.health_check_key(rt.settings),
        retry_jobs=True,
        expires_extra_ms=queue.EXPIRES_EXTRA_MS,
    )
