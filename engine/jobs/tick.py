"""The region tick: one per region per fire time, recorded in the run ledger exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.worker import Retry
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from engine import logs, metrics, queue, scheduler
from engine.jobs.refresh import refresh_region
from engine.locks import OwnedLock
from engine.runtime import Runtime
from storage.models import CatchupPolicy, OverlapPolicy, Region, RunStatus
from storage.queries import regions, runs
from storage.redis import key
from storage.schedule import ScheduleError, parse_schedule

log = logs.get("engine.tick")
BUFFER_POLL_S = 1.0
DB_DOWN_ERRORS = (OSError, OperationalError, InterfaceError, DBAPIError)


async def tick(ctx: dict[str, Any], region_code: str, fire_ts: int, manual: bool = False) -> str:
    """arq entry point. Returns a word for arq's result: what became of this fire time."""
    rt: Runtime = ctx["runtime"]
    fire = datetime.fromtimestamp(fire_ts, UTC)
    job_id: str = ctx["job_id"]
    try:
        with metrics.JOB_DURATION.labels("tick").time():
            outcome = await run_tick(rt, region_code, fire, job_id, manual)
        metrics.TICKS.labels(outcome).inc()
        return outcome
    except DB_DOWN_ERRORS as exc:
        # The database is unreachable: try again later rather than lose the fire time.
        log.warning("tick.db_unavailable", region=region_code, job_id=job_id, error=str(exc))
        raise Retry(defer=min(5 * ctx.get("job_try", 1), 60)) from exc


async def run_tick(rt: Runtime, region_code: str, fire: datetime, job_id: str, manual: bool) -> str:
    # Single statements on autocommit sessions: a tick is a few round trips, not a dozen.
    async with rt.db.autocommit() as session:
        region = await regions.get_region(session, region_code)
    if region is None:
        log.info("tick.region_gone", region=region_code, job_id=job_id)
        return "gone"
    if not manual:
        verdict = await _check_schedule(rt, region, fire)
        if verdict is not None:
            log.info("tick.dropped", region=region_code, fire=fire.isoformat(), reason=verdict)
            return verdict

    ttl_ms = (rt.settings.tick_timeout_s + 15) * 1000
    running = OwnedLock(rt.redis, key(rt.settings, "tick-running", region_code), job_id, ttl_ms)
    if not await running.acquire():
        return await _overlap(rt, region, fire, job_id, running, manual)
    try:
        if region.overlap_policy == OverlapPolicy.BUFFER:
            await _release_buffer_slot(rt, region_code, job_id)
        return await _run_owned(rt, region, fire, job_id, manual)
    finally:
        await running.release()


async def _check_schedule(rt: Runtime, region: Region, fire: datetime) -> str | None:
    """None when this fire time is owed; else why not. Also enqueues the next fire time."""
    try:
        schedule = parse_schedule(region.cron, region.timezone)
    except ScheduleError:
        return "invalid-cron"
    if not region.active:
        return "paused"
    if fire < region.schedule_since or not schedule.is_fire_time(fire):
        return "stale"
    successor = schedule.next_fire(fire)
    now = datetime.now(UTC)
    late = now - fire > timedelta(seconds=region.misfire_grace_s)
    if successor <= now or (late and region.catchup_policy == CatchupPolicy.MISSED):
        # A newer fire time is already due (or this one is past its grace): the region's
        # catch-up policy decides what runs, exactly as when an engine starts after a gap.
        await scheduler.reconcile(rt, only={region.code}, now=now)
        async with rt.db.session() as session:
            if await runs.is_final(session, kind=runs.TICK, region_code=region.code, fire=fire):
                return "missed"
        return None
    # Enqueue the successor first, so a long tick never delays the next one.
    await queue.enqueue_ticks(rt.redis, rt.settings, [queue.TickRequest(region.code, successor)])
    return None


async def _overlap(
    rt: Runtime, region: Region, fire: datetime, job_id: str, running: OwnedLock, manual: bool
) -> str:
    holder = await running.holder()
    if region.overlap_policy == OverlapPolicy.BUFFER:
        slot = OwnedLock(
            rt.redis,
            key(rt.settings, "tick-buffer", region.code),
            job_id,
            (rt.settings.tick_timeout_s + 15) * 1000,
        )
        if await slot.acquire():
            log.info("tick.buffered", region=region.code, fire=fire.isoformat(), behind=holder)
            raise Retry(defer=BUFFER_POLL_S)
    async with rt.db.session() as session:
        await runs.record_final(
            session,
            kind=runs.TICK,
            region_code=region.code,
            fire_times=[fire],
            status=RunStatus.SKIPPED,
            error=f"previous tick still running ({holder})",
            job_id=job_id,
            manual=manual,
        )
    log.info("tick.skipped", region=region.code, fire=fire.isoformat(), behind=holder)
    return "skipped"


async def _release_buffer_slot(rt: Runtime, region_code: str, job_id: str) -> None:
    slot = OwnedLock(rt.redis, key(rt.settings, "tick-buffer", region_code), job_id, 1)
    await slot.release()


async def _run_owned(rt: Runtime, region: Region, fire: datetime, job_id: str, manual: bool) -> str:
    async with rt.db.autocommit() as session:
        claim = await runs.claim(
            session,
            kind=runs.TICK,
            region_code=region.code,
            scheduled_for=fire,
            job_id=job_id,
            worker=rt.name,
            manual=manual,
        )
    if claim is None:
        log.info("tick.already_done", region=region.code, fire=fire.isoformat(), job_id=job_id)
        return "already-done"
    if not manual:
        metrics.TICK_LAG.observe(max((datetime.now(UTC) - fire).total_seconds(), 0))
    bound = log.bind(
        region=region.code,
        fire=fire.isoformat(),
        job_id=job_id,
        run_id=claim.run_id,
        attempt=claim.attempt,
    )
    started = asyncio.get_running_loop().time()
    try:
        counts = await refresh_region(rt, region, claim.run_id)
    except DB_DOWN_ERRORS:
        raise
    except Exception as exc:
        async with rt.db.autocommit() as session:
            await runs.finish(session, claim.run_id, status=RunStatus.FAILED, error=repr(exc))
        bound.exception("tick.failed")
        return "failed"
    async with rt.db.autocommit() as session:
        await runs.finish(session, claim.run_id, status=RunStatus.OK, counts=counts)
    elapsed_ms = round((asyncio.get_running_loop().time() - started) * 1000)
    bound.info("tick.ok", duration_ms=elapsed_ms, **counts)
    return "ok"
