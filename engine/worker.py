"""Building the engine's arq workers from their queue specs, and a worker that sleeps while idle.

`build_worker(rt, spec)` is the one place a `Worker` is made: every queue's (engine.queue_specs)
gets the same keys, result keeping, health checks and expiry, and differs only by its spec.

arq's worker polls its queue every `poll_delay`: at 10 ms, four idle workers cost ~10% of a core
and ~200 Redis commands/s. `SleepingWorker` polls only when there may be work: right after it
started jobs, when one of its jobs ends, when an enqueue publishes on the queue's wake channel
(engine.queues.enqueue_if_absent), at the score of the next deferred job, and at least every
`IDLE_MAX_S` (for jobs arq re-delivers after a dead worker's lease, or added by other means).
Idle cost: one ZRANGEBYSCORE pair per `IDLE_MAX_S` per queue; a new job starts within a
round trip of its enqueue or its due time. Busy cost: one pipelined EXISTS per poll for the due
ids, so only ids not running anywhere reach arq's per-id start (three round trips each).
"""

from __future__ import annotations

import asyncio
import contextlib

from arq.utils import timestamp_ms
from arq.worker import Worker, func

from engine import logs, queues, redis_keys
from engine.queue_specs import QueueSpec
from engine.resilience.backoff import Backoff
from engine.runtime import Runtime

HEALTH_CHECK_INTERVAL_S = 5
# Between polls the sleeping worker waits for a reason to look (see the module docstring).
POLL_DELAY_S = 0.0
IDLE_MAX_S = 1.0
KEEP_RESULT_S = 3600


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
        await super().start_jobs(await self._not_running(job_ids))
        for job_id, task in self.tasks.items():
            if before.get(job_id) is not task:
                self._started = True
                task.add_done_callback(lambda _: self._wake.set())

    async def _not_running(self, job_ids: list[bytes]) -> list[bytes]:
        """The ids not running here or elsewhere, in ONE round trip.

        arq's start_jobs spends three round trips (WATCH, EXISTS, ZSCORE) on every due id,
        running or not; long jobs (a publish batch sends for seconds) are seen again at every
        poll, and in a burst polls are frequent: that churn was ~9% of an engine's CPU in
        bench.publish_burst. arq still checks each id left, under WATCH, before it starts it.
        """
        fresh = [job_id for job_id in job_ids if job_id.decode() not in self.tasks]
        if not fresh:
            return []
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in fresh:
                pipe.exists(redis_keys.in_progress_key(job_id.decode()))
            running = await pipe.execute()
        return [job_id for job_id, busy in zip(fresh, running, strict=True) if not busy]

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
        backoff = Backoff()
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(redis_keys.wake_channel(self.queue_name))
                backoff.reset()
                self._wake.set()  # messages may have been missed while not subscribed
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                log.warning("worker.wake_listen_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


def build_worker(rt: Runtime, spec: QueueSpec) -> Worker:
    """The worker of one queue, as its spec says; `ctx["runtime"]` is `rt` in every job."""
    settings = rt.settings
    timeout = spec.timeout_s(settings)
    worker_class = SleepingWorker if spec.sleeps else Worker
    return worker_class(
        functions=[
            func(job, name=name, max_tries=spec.max_tries(settings), timeout=timeout)
            for name, job in spec.functions
        ],
        cron_jobs=spec.cron_jobs(settings) or None,
        queue_name=redis_keys.queue_key(settings, spec.name),
        redis_pool=rt.redis,
        ctx={"runtime": rt},
        on_startup=spec.on_startup,
        on_shutdown=spec.on_shutdown,
        handle_signals=False,
        max_jobs=spec.max_jobs(settings),
        job_timeout=timeout,
        keep_result=KEEP_RESULT_S,
        poll_delay=POLL_DELAY_S if spec.sleeps else spec.poll_delay_s,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        health_check_key=redis_keys.health_check_key(settings, spec.name),
        retry_jobs=True,
        expires_extra_ms=queues.EXPIRES_EXTRA_MS,
    )
