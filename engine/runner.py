"""The engine process: worker + scheduler, SIGTERM-clean, and patient with dead dependencies.

Before any work starts, ENCRYPTION_KEY is checked against the stored key check
(storage.queries.key_check): under ENV=prod a key that cannot read it stops the engine
(KeyCheckFailed, exit non-zero); in dev and test it is logged as an error and publishing defers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial
from wsgiref.simple_server import WSGIServer

from arq.worker import Worker

from engine import heartbeat, logs, metrics, queues, tick_queue
from engine.alerts import sampler as alert_sampler
from engine.alerts.notify import Notifier
from engine.oauth import refresh as token_refresh
from engine.platforms import stored_credentials
from engine.queue_specs import QUEUE_SPECS, QueueSpec
from engine.resilience.backoff import Backoff
from engine.runtime import Runtime
from engine.scheduler import Scheduler
from engine.worker import build_worker
from storage.database import Database
from storage.queries.key_check import KeyCheckFailed, startup_check
from storage.settings import Settings

log = logs.get("engine")


class Role(StrEnum):
    ALL = "all"
    WORKER = "worker"
    SCHEDULER = "scheduler"


async def connect(settings: Settings, stop: asyncio.Event) -> Runtime | None:
    """Connect to Redis and Postgres, backing off while either is down."""
    backoff = Backoff()
    while not stop.is_set():
        rt: Runtime | None = None
        try:
            # No retries inside arq: this loop backs off itself and says so at every try.
            rt = await Runtime.connect(settings, retries=0)
            await rt.redis.ping()
            await rt.db.ping()
            return rt
        except Exception as exc:
            delay = backoff.next()
            log.warning("engine.dependency_down", error=repr(exc), retry_in_s=delay)
            if rt is not None:
                await rt.close()
            await _wait(stop, delay)
    return None


async def supervise_worker(rt: Runtime, stop: asyncio.Event, spec: QueueSpec) -> None:
    """Run the arq worker of one queue; if Redis drops it, log, back off and start a fresh one."""
    backoff = Backoff()
    while not stop.is_set():
        worker = build_worker(rt, spec)
        main = asyncio.create_task(worker.main())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([main, stopper], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await _drain(worker, main, rt.settings.engine.shutdown_grace_s)
            with contextlib.suppress(Exception):
                await rt.redis.delete(worker.health_check_key)
            return
        stopper.cancel()
        error = main.exception() if not main.cancelled() else None
        delay = backoff.next()
        log.warning("engine.worker_stopped", queue=spec.name, error=repr(error), retry_in_s=delay)
        await _cancel_jobs(worker)
        await _wait(stop, delay)


async def keep_running(name: str, loop: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run one of the engine's loops until `stop`; if it ever raises, log and start it again.

    Each loop handles the outages it knows (Redis or Postgres down) itself; this is the floor
    beneath them, so that a failure nobody foresaw costs a backoff, never the whole engine.
    """
    backoff = Backoff()
    while not stop.is_set():
        try:
            await loop()
            return
        except Exception as exc:
            delay = backoff.next()
            log.error("engine.loop_crashed", loop=name, error=repr(exc), retry_in_s=delay)
            await _wait(stop, delay)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if the engine is told to stop meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _drain(worker: Worker, main: asyncio.Task[None], grace_s: float) -> None:
    """Stop taking work; let running jobs finish up to the grace period; cancel the rest."""
    worker.allow_pick_jobs = False
    running = [task for task in worker.tasks.values() if not task.done()]
    log.info("engine.draining", running=len(running), grace_s=grace_s)
    if running:
        _, late = await asyncio.wait(running, timeout=grace_s)
        if late:
            # arq puts a cancelled job back in the queue; the ledger keeps its effect single.
            log.warning("engine.grace_expired", cancelled=len(late))
            await _cancel_jobs(worker)
    main.cancel()
    await asyncio.gather(main, return_exceptions=True)


async def _cancel_jobs(worker: Worker) -> None:
    tasks = [task for task in worker.tasks.values() if not task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_engine(
    settings: Settings, role: Role = Role.ALL, stop: asyncio.Event | None = None
) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _on_signal, stop, sig)
    log.info(
        "engine.start",
        role=role.value,
        concurrency=settings.engine.concurrency,
        prefix=settings.redis_prefix,
    )
    _serve_metrics(settings)
    rt = await connect(settings, stop)
    if rt is None:
        return 0
    try:
        await check_encryption_key(rt)
    except KeyCheckFailed:
        await rt.close()
        raise
    await stored_credentials.adopt(rt)  # YOUTUBE_API_KEY & co from the encrypted store
    loops: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("heartbeat", partial(heartbeat.beat, rt, stop, role.value))
    ]
    # The facts Prometheus cannot count, and the alert webhooks (engine.alerts.sampler, .notify).
    notifier = Notifier.from_settings(rt.redis, settings)
    if settings.engine.metrics_port or notifier is not None:
        loops.append(("alert_sampler", partial(alert_sampler.run, rt, stop, notifier)))
    if role in (Role.ALL, Role.SCHEDULER):
        loops.append(("scheduler", partial(Scheduler(rt).run, stop)))
    if role in (Role.ALL, Role.WORKER):
        for spec in QUEUE_SPECS:
            loops.append((f"worker:{spec.name}", partial(supervise_worker, rt, stop, spec)))
        loops.append(("token_refresh", partial(token_refresh.run, rt, stop)))  # engine.oauth
    tasks = [asyncio.create_task(keep_running(name, loop, stop)) for name, loop in loops]
    try:
        await asyncio.gather(*tasks)
    finally:
        await rt.close()
        log.info("engine.stopped")
    return 0


async def check_encryption_key(rt: Runtime) -> None:
    """Log what the key check found; under ENV=prod a failed check raises KeyCheckFailed."""
    try:
        status = await startup_check(rt.db, rt.settings)
    except KeyCheckFailed as exc:
        log.error("engine.encryption_key_refused", error=str(exc))
        raise
    if status.ok:
        log.info("engine.encryption_key", state=status.state.value)
    else:
        # dev/test: start anyway, loudly; every publication defers until the key is fixed.
        log.error("engine.encryption_key_unusable", state=status.state.value, error=status.message)


def _serve_metrics(settings: Settings) -> WSGIServer | None:
    port, host = settings.engine.metrics_port, settings.engine.metrics_host
    if not port:
        return None
    try:
        server = metrics.serve(port, host)
    except OSError as exc:
        # A second engine on the same host: it runs on, unscraped, rather than not at all.
        log.warning("engine.metrics_unavailable", host=host, port=port, error=str(exc))
        return None
    log.info("engine.metrics", host=host, port=port)
    return server


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    log.info("engine.signal", signal=sig.name)
    stop.set()


async def check(settings: Settings) -> tuple[bool, str]:
    """For container health checks: an engine reported lately, and Postgres answers."""
    try:
        redis = await queues.connect(settings, retries=0)
    except Exception as exc:
        return False, f"redis unreachable: {exc!r}"
    try:
        health = await tick_queue.engine_health(redis, settings)
    finally:
        await redis.aclose()
    db = Database(settings)
    try:
        await db.ping()
    except Exception as exc:
        return False, f"postgres unreachable: {exc!r}"
    finally:
        await db.dispose()
    if health is None:
        return False, "no engine health report in the last few seconds"
    return True, health
