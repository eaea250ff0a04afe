"""The region scheduler: reconciles the `region` table into deferred tick jobs.

It runs on start, every REGION_REFRESH_INTERVAL_MS, and within a second of a region change
(Postgres NOTIFY). Any number of replicas may run it: a tick job is one per fire time and shard
of regions (engine.tick_queue), and the ledger's unique key settles the rest.

A shard's job at a fire time exists while at least one region of the shard wants that fire time;
the job itself decides, region by region, from the region row and the ledger. A full pass also
sweeps the ledger: a run claimed but never fanned out (its shard died, or Redis lost the job) gets
its shard's job back and is taken over; a run whose batches never all reported is closed; a
queued backfill row whose job is gone gets it back, or fails with why (engine.backfill).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Collection, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import backfill, logs, metrics, publish_queue, redis_keys, tick_queue
from engine.resilience.backoff import Backoff
from engine.runtime import Runtime
from storage.database import REGIONS_CHANNEL, listen
from storage.models import CatchupPolicy, Region, RunStatus
from storage.queries import regions, runs, ticks
from storage.schedule import Calendar, Schedule, ScheduleError, parse_schedule

log = logs.get("engine.scheduler")
MAX_CATCHUP_FIRES = 1000
SENTINEL_CHECK_S = 1.0
MAX_CALENDAR_FIRES = 100_000
NEVER = datetime.min.replace(tzinfo=UTC)
UNFANNED_GRACE = timedelta(seconds=15)
SWEEP_S = 30.0  # between ledger sweeps (two indexed reads on the ledger's running rows)
ABANDONED_AFTER = 2  # tick time limits


@dataclass
class Plan:
    """What one reconcile does for one region: the fire times its shard must have queued
    (`wanted`), those of them not queued yet (`enqueue`), and those recorded as missed."""

    enqueue: list[datetime] = field(default_factory=list)
    wanted: set[datetime] = field(default_factory=set)
    missed: list[datetime] = field(default_factory=list)


def anchor(region: Region, latest_run: datetime | None, now: datetime) -> datetime:
    """Fire times after this are owed: since the schedule began, the last run, the window."""
    window_start = now - timedelta(seconds=region.catchup_window_s)
    return max(region.schedule_since, latest_run or NEVER, window_start)


def plan_region(
    region: Region,
    calendar: Calendar | None,
    queued: Collection[datetime],
    latest_run: datetime | None,
    now: datetime,
) -> Plan:
    """What this region needs of its shard's queue (`queued`: its scheduled fire times), and
    what to record as missed (pure: no I/O)."""
    plan = Plan()
    if calendar is None or not region.active:
        return plan
    plan.wanted.add(calendar.next_fire)
    due = calendar.due(anchor(region, latest_run, now))[-MAX_CATCHUP_FIRES:]
    if due:
        if region.catchup_policy == CatchupPolicy.RUN_ONCE:
            # Every owed fire time coalesces into one run: the latest.
            owed_late, to_run = due[:-1], due[-1:]
        else:
            cutoff = now - timedelta(seconds=region.misfire_grace_s)
            owed_late = [fire for fire in due if fire <= cutoff]
            to_run = [fire for fire in due if fire > cutoff]
        plan.missed.extend(owed_late)
        plan.wanted.update(to_run)
    plan.enqueue = sorted(fire for fire in plan.wanted if fire not in queued)
    return plan


def calendars(
    table: list[Region], latest: dict[str, datetime], now: datetime
) -> tuple[dict[str, Calendar], dict[str, str]]:
    """One calendar per distinct (cron, timezone), spanning what its regions need; and errors."""
    schedules: dict[str, Schedule] = {}
    invalid: dict[str, str] = {}
    earliest: dict[Schedule, datetime] = {}
    for region in table:
        try:
            schedule = parse_schedule(region.cron, region.timezone)
        except ScheduleError as exc:
            invalid[region.code] = str(exc)
            continue
        schedules[region.code] = schedule
        start = anchor(region, latest.get(region.code), now)
        earliest[schedule] = min(start, earliest.get(schedule, start))
    built = {
        schedule: schedule.calendar(start, now, MAX_CALENDAR_FIRES)
        for schedule, start in earliest.items()
    }
    return {code: built[schedule] for code, schedule in schedules.items()}, invalid


@dataclass
class ReconcileReport:
    regions: int = 0
    enqueued: int = 0
    removed: int = 0
    missed: int = 0
    invalid: dict[str, str] = field(default_factory=dict)


async def reconcile(
    rt: Runtime, only: set[str] | None = None, now: datetime | None = None
) -> ReconcileReport:
    """Make the queue match the region table (all regions, or the shards of the codes in `only`:
    a shard's job is wanted by any of its regions, so those shards are planned whole)."""
    now = now or datetime.now(UTC)
    settings = rt.settings
    shards = None if only is None else {tick_queue.shard_of(settings, code) for code in only}
    # Read the queue before the ledger: a tick that ends in between is then seen in the ledger.
    queued: dict[int, dict[datetime, str]] = defaultdict(dict)
    for ref in await tick_queue.pending_ticks(rt.redis, settings):
        if ref.shard is None or ref.buffered or (shards is not None and ref.shard not in shards):
            continue  # manual runs and buffered follow-ups are not the schedule's to change
        queued[ref.shard][ref.fire] = ref.job_id
    async with rt.db.session() as session:
        if shards is None:
            table = await regions.list_regions(session)
        else:
            table = await ticks.shard_regions(session, shards, settings.engine.tick_shards)
        latest = await runs.latest_fire_per_region(session)

    report = ReconcileReport(regions=len(table))
    by_code, report.invalid = calendars(table, latest, now)
    for code, error in report.invalid.items():
        log.warning("region.invalid_cron", region=code, error=error)
    to_enqueue: set[tuple[int, datetime]] = set()
    wanted: dict[int, set[datetime]] = defaultdict(set)
    missed: dict[str, list[datetime]] = {}
    for region in table:
        shard = region.shard_key % settings.engine.tick_shards
        plan = plan_region(
            region, by_code.get(region.code), queued.get(shard, {}), latest.get(region.code), now
        )
        to_enqueue.update((shard, fire) for fire in plan.enqueue)
        wanted[shard].update(plan.wanted)
        if plan.missed:
            missed[region.code] = plan.missed
    # Jobs no region of their shard wants any more (schedule changed, paused, deleted).
    to_remove = [
        job_id
        for shard, fires in queued.items()
        for fire, job_id in fires.items()
        if fire not in wanted.get(shard, set())
    ]
    report.removed = await tick_queue.remove_jobs(rt.redis, settings, to_remove)
    for code, fires in missed.items():
        async with rt.db.transaction() as session:
            report.missed += await runs.record_final(
                session,
                kind=runs.TICK,
                region_code=code,
                fire_times=fires,
                status=RunStatus.MISSED,
                error="no engine ran at this fire time",
            )
    report.enqueued = await tick_queue.enqueue_shards(
        rt.redis, settings, (tick_queue.ShardTick(shard, fire) for shard, fire in to_enqueue)
    )
    metrics.TICKS.labels("missed").inc(report.missed)
    return report


async def sweep_ledger(
    rt: Runtime, now: datetime | None = None, redis_lost: bool = False
) -> tuple[int, int]:
    """Runs claimed but never fanned out get their tick job back (it takes them over); runs
    whose batches never all reported are closed. Returns (requeued, closed).

    After Redis lost its data every running run lost its fetch batches too: all of them are
    fanned out again, by a new attempt that fetches only the creators still owed in the slot.
    """
    now = now or datetime.now(UTC)
    timeout = timedelta(seconds=rt.settings.engine.tick_timeout_s)
    async with rt.db.autocommit() as session:
        if redis_lost:
            await ticks.unfan_running(session)
        # A shard fans out within a second; one that did not within its time limit + arq's
        # re-delivery margin is dead, and its job may be gone with Redis.
        before = now if redis_lost else now - timeout - UNFANNED_GRACE
        stale = await ticks.unfanned_claims(session, before)
        closed = await ticks.close_abandoned(session, now - ABANDONED_AFTER * timeout)
    requests = [tick_queue.TickRequest(s.region_code, s.fire, s.manual) for s in stale]
    requeued = await tick_queue.enqueue_ticks(rt.redis, rt.settings, requests) if requests else 0
    if requeued or closed:
        log.warning("scheduler.ledger_swept", requeued=requeued, closed=closed)
    # Queued backfill rows whose job Redis lost: their own sweep (not counted above).
    backfills = await backfill.sweep_backfills(rt, now)
    if backfills.requeued or backfills.failed:
        log.warning(
            "scheduler.backfills_swept", requeued=backfills.requeued, failed=backfills.failed
        )
    return requeued, closed


class Scheduler:
    """The loop: full reconcile on start and on the interval; one region at a time on NOTIFY."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.interval_s = rt.settings.engine.region_refresh_interval_ms / 1000
        self.dirty: set[str] = set()
        self.full = True
        self.redis_lost = False  # the sentinel was found missing; the next sweep must know
        self.wake = asyncio.Event()
        self.reconciled = asyncio.Event()
        self.listening = asyncio.Event()  # set while the LISTEN connection is up
        # Set after every full pass; its absence means Redis lost what the scheduler put there.
        self.sentinel = redis_keys.scheduler_sentinel_key(rt.settings)
        self.next_sweep = 0.0

    def notify(self, code: str) -> None:
        self.dirty.add(code)
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop))
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    await self._pass()
                    backoff.reset()
                    # The wait reads Redis too (the sentinel): a dead Redis there is the same
                    # outage as in the pass, and must not end the loop.
                    await self._wait(stop)
                except Exception as exc:
                    delay = backoff.next()
                    log.warning("scheduler.reconcile_failed", error=repr(exc), retry_in_s=delay)
                    self.full = True
                    await _sleep_unless(stop, delay)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _pass(self) -> None:
        started = asyncio.get_running_loop().time()
        if self.full:
            self.full = False
            self.dirty.clear()
            # Sticky until a sweep used it: a pass that fails after this line still owes it.
            self.redis_lost = self.redis_lost or not await self.rt.redis.exists(self.sentinel)
            # Set before the work, not after: a wipe while the pass runs takes the sentinel with
            # it and the next wait notices; set after, it would hide that wipe for an interval.
            await self.rt.redis.set(self.sentinel, "1")
            report = await reconcile(self.rt)
            await sweep_ledger(self.rt, redis_lost=self.redis_lost)
            self.redis_lost = False
            self.next_sweep = asyncio.get_running_loop().time() + SWEEP_S
            await self._reconcile_publications()
        elif self.dirty:
            codes, self.dirty = self.dirty, set()
            report = await reconcile(self.rt, only=codes)
        else:
            return
        elapsed_ms = round((asyncio.get_running_loop().time() - started) * 1000)
        log.info(
            "scheduler.reconciled",
            regions=report.regions,
            enqueued=report.enqueued,
            removed=report.removed,
            missed=report.missed,
            invalid=len(report.invalid),
            duration_ms=elapsed_ms,
        )
        self.reconciled.set()

    async def _reconcile_publications(self) -> None:
        """Rebuild publish jobs from Postgres; its failure must not hold back the ticks."""
        try:
            await publish_queue.reconcile(self.rt)
        except Exception as exc:
            log.warning("scheduler.publish_reconcile_failed", error=repr(exc))

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until a NOTIFY, the interval, or Redis losing its data (the sentinel is gone)."""
        self.wake.clear()
        if self.dirty:
            return
        deadline = asyncio.get_running_loop().time() + self.interval_s
        while not stop.is_set():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                self.full = True
                return
            waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            done, rest = await asyncio.wait(
                waiters, timeout=min(left, SENTINEL_CHECK_S), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in rest:
                waiter.cancel()
            if done:
                return
            if not await self.rt.redis.exists(self.sentinel):
                # Redis was flushed or restarted empty: Postgres rebuilds every pending job now.
                log.warning("scheduler.redis_data_lost")
                self.full = True
                return
            if asyncio.get_running_loop().time() >= self.next_sweep:
                self.next_sweep = asyncio.get_running_loop().time() + SWEEP_S
                try:
                    await sweep_ledger(self.rt)
                except Exception as exc:
                    log.warning("scheduler.sweep_failed", error=repr(exc))

    async def _listen(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                async with listen(self.rt.db.url, REGIONS_CHANNEL, self.notify) as lost:
                    log.info("scheduler.listening", channel=REGIONS_CHANNEL)
                    self.listening.set()
                    backoff.reset()
                    # Notifications may have been lost while we were not listening.
                    self.full = True
                    self.wake.set()
                    await _first(stop.wait(), lost.wait())
                    if lost.is_set():
                        raise ConnectionError("LISTEN connection lost")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                delay = backoff.next()
                log.warning("scheduler.listen_failed", error=repr(exc), retry_in_s=delay)
                await _sleep_unless(stop, delay)


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    _, rest = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in rest:
        task.cancel()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
