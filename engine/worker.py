"""arq worker settings for the engine's queues."""

from __future__ import annotations

from arq.worker import Function, Worker, func

from engine import queue
from engine.jobs.tick import tick
from engine.runtime import Runtime

HEALTH_CHECK_INTERVAL_S = 5
KEEP_RESULT_S = 3600
# Retries come from Retry (buffered ticks, database down) and from killed workers; the ledger
# keeps the effect single, so the number only bounds a job that never succeeds.
TICK_MAX_TRIES = 1000


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
        poll_delay=0.1,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        health_check_key=queue.health_check_key(rt.settings),
        retry_jobs=True,
        expires_extra_ms=queue.EXPIRES_EXTRA_MS,
    )
