"""Rollups as scheduled engine jobs: arq cron on their own queue (`{prefix}:queue:rollups`,
worked as engine.queue_specs says).

Every 15 minutes an incremental run of the 14-day window (a full one when the day changed);
the same functions can be enqueued by hand. Several engine replicas fire one job per time
(deterministic cron job ids) and the rollup's advisory lock serialises anything else.
"""

from __future__ import annotations

import time
from typing import Any

from arq.cron import CronJob, cron

from engine import logs, redis_keys
from engine.experiments.rollups import run_rollups, window_for
from engine.jobs import maintenance
from engine.runtime import Runtime
from storage.settings import Settings

ROLLUPS = redis_keys.ROLLUPS
ROLLUP_FUNCTION = "rollup"
DEFAULT_WINDOW_DAYS = 14
CRON_MINUTES = {2, 17, 32, 47}
ROLLUP_TIMEOUT_S = 3600

log = logs.get("engine.jobs.rollups")


def queue_name(settings: Settings) -> str:
    return redis_keys.queue_key(settings, ROLLUPS)


async def rollup(
    ctx: dict[str, Any], window_days: int = DEFAULT_WINDOW_DAYS, incremental: bool = True
) -> dict[str, Any]:
    """Run the three rollup jobs over the window; idempotent, so an arq retry is harmless."""
    rt: Runtime = ctx["runtime"]
    report = await run_rollups(
        rt.db,
        window_for(window_days),
        incremental=incremental,
        trigger="engine",
        readers=rt.settings.engine.rollup_readers,
    )
    return {
        r.job.value: {"rows_written": r.rows_written, "incremental": r.incremental}
        for r in report.results
    }


async def rollup_cron(ctx: dict[str, Any]) -> dict[str, Any]:
    return await rollup(ctx)


def cron_jobs(settings: Settings) -> list[CronJob]:
    return [
        cron(
            rollup_cron,
            # The name makes the job id: `{prefix}:cron:rollups:{time}`, one per fire time.
            name=redis_keys.cron_name(settings, ROLLUPS),
            minute=CRON_MINUTES,
            unique=True,
            timeout=ROLLUP_TIMEOUT_S,
            max_tries=3,
        ),
        # Partition maintenance and retention ride on this queue: one job at a time.
        *maintenance.cron_jobs(settings),
    ]


async def enqueue_rollup(
    rt: Runtime, window_days: int = DEFAULT_WINDOW_DAYS, incremental: bool = False
) -> str | None:
    """Ask the engine for a rollup now (e.g. from the console). Returns the job id."""
    job = await rt.redis.enqueue_job(
        ROLLUP_FUNCTION,
        window_days,
        incremental,
        _queue_name=queue_name(rt.settings),
        _job_id=f"{rt.settings.redis_prefix}:rollup:manual:{window_days}:{int(time.time())}",
    )
    return job.job_id if job is not None else None
