"""arq worker settings for the engine's queues, and a worker that sleeps while idle.

arq's worker polls its queue every `poll_delay`: at 10 ms, four idle workers cost ~10% of a core
and ~200 Redis commands/s. `SleepingWorker` polls only when there may be work: right after it
started jobs, when one of its jobs ends, when an enqueue publishes on the queue's wake channel
(engine.queue.enqueue_if_absent), at the score of the next deferred job, and at least every
`IDLE_MAX_S` (for jobs arq re-delivers after a dead worker's lease, or added by other means).
Idle cost: one ZRANGEBYSCORE pair per `IDLE_MAX_S` per queue; a new job starts within a
round trip of its enqueue or its due time.
"""

from __future__ import annotations

import asyncio
import contextlib

from arq.utils import timestamp_ms
from arq.worker import Function, Worker, func

from engine import fetch_queue, logs, publish_queue, queue
from engine.jobs import fetch as fetch_job
from engine.jobs import publish as publish_job
from engine.jobs import publish_batch as publish_batch_job
from engine.jobs.rollups import build_rollup_worker as build_rollup_worker  # rollups queue + cron
from engine.jobs.tick import tick
from engine.platforms.config import get_tracking_settings
from engine.runtime import Runtime

HEALTH_CHECK_INTERVAL_S = 5
# Between polls the sleeping worker waits for a reason to look (see the module docstring).
POLL_DELAY_S = 0.0
IDLE_MAX_S = 1.0
KEEP_RESULT_S = 3600
# Retries come from Retry (buffered ticks, database down) and from killed workers; the ledger
# keeps the effect single, so the number only bounds a job that never succeeds.
TICK_MAX_TRIES = 1000
# Publish retries are planned in Postgres (new generation, new job); arq retries only cover a
# database outage and a killed worker, and the claim keeps those single.
PUBLISH_MAX_TRIES = 1000
# Publish jobs mostly wait on the platform's answer: many fit in one concurrency slot.
PUBLISH_JOBS_PER_SLOT = 10


log = logs.get("engine.worker")


class SleepingWorker(Worker):
    """An arq worker that sleeps until work may be there instead of polling every few ms."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._wake = asyncio.Event()
        self._started = False

    async def main(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            await super().main()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        before = {job_id: task for job_id, task in self.tasks.items()}
        await super().start_jobs(job_ids)
        for job_id, task in self.tasks.items():
            if before.get(job_id) is not task:
                self._started = True
                task.add_done_callback(lambda _: self._wake.set())

    async def _poll_iteration(self) -> None:
        self._wake.clear()  # what arrives from here on wakes the wait below
        await super()._poll_iteration()
        if self._started:
            self._started = False
            await asyncio.sleep(0)  # maybe more are ready: look again at once
            return
        timeout = IDLE_MAX_S
        if self.allow_pick_jobs and self.job_counter < self.max_jobs:
            now = timestamp_ms()
            upcoming = await self.pool.zrangebyscore(
                self.queue_name, min=f"({now}", max="+inf", start=0, num=1, withscores=True
            )
            if upcoming:
                timeout = min(timeout, max(float(upcoming[0][1]) - now, 0) / 1000)
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives as the event is set (a job ending while the engine drains), hanging shutdown.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    async def _listen(self) -> None:
        """Wake on the queue's channel; resubscribe (and look once) after a lost connection."""
        backoff = 0.5
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(queue.wake_channel(self.queue_name))
                backoff = 0.5
                self._wake.set()  # messages may have been missed while not subscribed
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker.wake_listen_failed", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


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
    return SleepingWorker(
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
    return SleepingWorker(
        functions=[
            func(
                publish_job.publish,
                name=publish_queue.PUBLISH_FUNCTION,
                max_tries=PUBLISH_MAX_TRIES,
                timeout=timeout,
            ),
            func(
                publish_batch_job.publish_batch,
                name=publish_queue.PUBLISH_BATCH_FUNCTION,
                max_tries=PUBLISH_MAX_TRIES,
                timeout=timeout,
            ),
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
    return SleepingWorker(
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
        poll_delay=POLL_DELAY_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        health_check_key=fetch_queue.health_check_key(rt.settings),
        retry_jobs=True,
        expires_extra_ms=queue.EXPIRES_EXTRA_MS,
    )
