"""Our queues as one table: what runs on each, how much of it at once, and for how long.

Every arq worker of the engine is `engine.worker.build_worker(rt, spec)` for one spec of
`QUEUE_SPECS`, and `engine.runner` supervises one worker per spec: adding a queue is one row
here (and its name in engine.redis_keys). Limits that depend on the deployment are functions of
the settings, read when the worker is built.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from arq.cron import CronJob
from arq.typing import StartupShutdown

from engine import publish_queue, redis_keys, tick_queue
from engine.fetch_queue import FETCH_FUNCTION
from engine.jobs import fetch as fetch_job
from engine.jobs import publish as publish_job
from engine.jobs import publish_batch as publish_batch_job
from engine.jobs import rollups
from engine.jobs.tick import tick
from engine.post_metrics import scan as post_metrics_scan
from storage.settings import Settings

Job = Callable[..., Coroutine[Any, Any, Any]]

# Retries come from Retry (buffered ticks, database down) and from killed workers; the ledger
# keeps the effect single, so the number only bounds a job that never succeeds.
TICK_MAX_TRIES = 1000
# Publish retries are planned in Postgres (new generation, new job); arq retries only cover a
# database outage and a killed worker, and the claim keeps those single.
PUBLISH_MAX_TRIES = 1000
# Publish jobs mostly wait on the platform's answer: many fit in one concurrency slot.
PUBLISH_JOBS_PER_SLOT = 10
ROLLUP_MAX_TRIES = 3


def _no_crons(settings: Settings) -> list[CronJob]:
    return []


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue and how its workers run it."""

    name: str
    """The queue (redis_keys.QUEUES); its key and health-check key follow from it."""
    functions: tuple[tuple[str, Job], ...]
    """The arq job functions that run there, each with the name jobs are enqueued under."""
    max_tries: Callable[[Settings], int]
    """Tries of one job before arq gives up on it."""
    timeout_s: Callable[[Settings], float]
    """A job's time limit; arq re-delivers a killed worker's job this + 10 s later."""
    max_jobs: Callable[[Settings], int]
    """Jobs one engine process runs at once on this queue."""
    cron_jobs: Callable[[Settings], list[CronJob]] = _no_crons
    """Jobs arq enqueues by the clock (deterministic ids: one per fire time)."""
    on_startup: StartupShutdown | None = None
    """Runs once per worker before its first job (e.g. an HTTP client in ctx)."""
    on_shutdown: StartupShutdown | None = None
    """Runs once per worker after its last job."""
    sleeps: bool = True
    """True: engine.worker.SleepingWorker (wakes on an enqueue); False: arq's own worker,
    polling every `poll_delay_s` (a queue with cron jobs: arq fires them from its poll)."""
    poll_delay_s: float = 0.0
    """Between polls of arq's own worker (`sleeps=False`)."""


QUEUE_SPECS: tuple[QueueSpec, ...] = (
    QueueSpec(
        name=redis_keys.TICKS,
        functions=((tick_queue.TICK_FUNCTION, tick),),
        max_tries=lambda s: TICK_MAX_TRIES,
        timeout_s=lambda s: s.engine.tick_timeout_s,
        max_jobs=lambda s: s.engine.concurrency,
    ),
    QueueSpec(
        name=redis_keys.FETCH,
        functions=((FETCH_FUNCTION, fetch_job.fetch_batch),),
        # Fetch jobs defer (Retry) while a platform is down, not fail.
        max_tries=lambda s: s.tracking.fetch_max_tries,
        timeout_s=lambda s: s.engine.tick_timeout_s,
        max_jobs=lambda s: s.tracking.fetch_jobs,
        on_startup=fetch_job.on_startup,
        on_shutdown=fetch_job.on_shutdown,
    ),
    QueueSpec(
        name=redis_keys.PUBLISH,
        functions=(
            (publish_queue.PUBLISH_FUNCTION, publish_job.publish),
            (publish_queue.PUBLISH_BATCH_FUNCTION, publish_batch_job.publish_batch),
        ),
        max_tries=lambda s: PUBLISH_MAX_TRIES,
        timeout_s=publish_queue.publish_timeout_s,
        max_jobs=lambda s: s.engine.concurrency * PUBLISH_JOBS_PER_SLOT,
        on_startup=publish_job.on_startup,
    ),
    QueueSpec(
        name=redis_keys.ROLLUPS,
        functions=((rollups.ROLLUP_FUNCTION, rollups.rollup),),
        max_tries=lambda s: ROLLUP_MAX_TRIES,
        timeout_s=lambda s: rollups.ROLLUP_TIMEOUT_S,
        # One job at a time: rollups serialise in Postgres anyway.
        max_jobs=lambda s: 1,
        cron_jobs=rollups.cron_jobs,
        sleeps=False,
        poll_delay_s=0.5,
    ),
    QueueSpec(
        name=redis_keys.METRICS,
        functions=((post_metrics_scan.SCAN_FUNCTION, post_metrics_scan.scan_post_metrics),),
        max_tries=lambda s: 1,  # a failed scan is simply the next scan's work
        timeout_s=lambda s: post_metrics_scan.SCAN_TIMEOUT_S,
        max_jobs=lambda s: 1,
        cron_jobs=post_metrics_scan.cron_jobs,
        on_startup=post_metrics_scan.on_startup,
        on_shutdown=post_metrics_scan.on_shutdown,
        sleeps=False,
        poll_delay_s=1.0,
    ),
)

SPECS: dict[str, QueueSpec] = {spec.name: spec for spec in QUEUE_SPECS}
