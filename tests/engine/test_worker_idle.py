"""The sleeping worker: idle, it makes almost no Redis commands; woken, it starts a job at once.

The idle cap is raised to a minute in these tests, so a job that starts within seconds was
started by the wake channel or the next-deferred-score timer, not by a periodic poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from arq.worker import func

from engine import queues, redis_keys
from engine import worker as worker_module
from engine.runtime import Runtime
from engine.worker import SleepingWorker
from storage.settings import Settings
from tests.support.engine import runtime

QUEUE = "idle-test"


@asynccontextmanager
async def sleeping_worker(rt: Runtime, started: dict[str, float]) -> AsyncIterator[SleepingWorker]:
    async def job(ctx: dict[str, Any]) -> None:
        started[ctx["job_id"]] = time.monotonic()

    worker = SleepingWorker(
        functions=[func(job, name="job")],
        queue_name=redis_keys.queue_key(rt.settings, QUEUE),
        redis_pool=rt.redis,
        handle_signals=False,
        poll_delay=worker_module.POLL_DELAY_S,
        keep_result=0,
    )
    task = asyncio.create_task(worker.main())
    try:
        await asyncio.sleep(0.3)  # subscribed
        yield worker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _wait(started: dict[str, float], job_id: str, timeout: float = 10) -> float:
    deadline = time.monotonic() + timeout
    while job_id not in started:
        assert time.monotonic() < deadline, f"{job_id} never started"
        await asyncio.sleep(0.01)
    return started[job_id]


async def test_an_idle_worker_sleeps_and_wakes_for_new_and_deferred_jobs(
    test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "IDLE_MAX_S", 60.0)
    started: dict[str, float] = {}
    async with runtime(test_settings) as rt, sleeping_worker(rt, started):
        calls = 0
        real = rt.redis.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(rt.redis, "execute_command", counted)
        await asyncio.sleep(1.5)
        # Polling every 10 ms made ~150 round trips here; asleep, it makes none or one.
        assert calls <= 3

        name = redis_keys.queue_key(test_settings, QUEUE)
        now_ms = int(time.time() * 1000)
        enqueued = time.monotonic()
        await queues.enqueue_if_absent(rt.redis, name, [queues.NewJob("now", "job", (), now_ms)])
        assert await _wait(started, "now") - enqueued < 5  # woken by the channel, not the cap

        due_in = 1.0
        later = queues.NewJob("later", "job", (), int((time.time() + due_in) * 1000))
        enqueued = time.monotonic()
        await queues.enqueue_if_absent(rt.redis, name, [later])
        waited = await _wait(started, "later") - enqueued
        assert due_in - 0.05 <= waited < 5  # at its due time: the timer on the next score
