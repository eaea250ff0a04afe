"""The tick: one job per fire time and shard of regions; one ledger row per region and fire time.

A shard job (engine.tick_queue) does, for all its regions at once, in a handful of statements:

1. reads the shard's regions (one query) and decides per region (pure, `decide`): not owed
   (paused, invalid cron, an old schedule: dropped), late (a newer fire time is already due, or
   past its grace under the `missed` policy: the catch-up policy decides, exactly as when an
   engine starts after a gap), or owed. It enqueues the successors' shard jobs first, so a slow
   shard never delays the next fire time.
2. overlap, from the ledger (one query): a region whose previous run is still `running` (started
   within TICK_TIMEOUT_S) is recorded `skipped`, or under `buffer` waits in a follow-up job of
   the shard (`…:buffer`, deferred, holding no worker slot), at most one per region.
3. claims the owed fire times in ONE `INSERT … ON CONFLICT … RETURNING`: a region whose row
   already ended or was fanned out is not returned, so it never runs twice; a row a dead shard
   claimed but never fanned out is taken over (attempt + 1).
4. fans out (engine.jobs.refresh): due creators in one query, fetch batches in one script,
   fan-out counts in one UPDATE. It never waits for its batches: the last one to report
   completes the run.

A backfill (engine.backfill) is a manual tick of one region at a past fire time whose ledger row
was written `queued`: it claims that row and fans out, without the overlap policy.

At-least-once delivery, exactly-once effect: a shard killed at any point is re-delivered by arq
(or re-created by the scheduler's ledger sweep) and its re-run takes over exactly the runs the
dead one claimed and did not fan out.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.worker import Retry

from engine import logs, metrics, redis_keys, scheduler, tick_queue
from engine.jobs.refresh import fan_out
from engine.locks import OwnedLock
from engine.runtime import Runtime
from storage.errors import DB_DOWN_ERRORS
from storage.models import CatchupPolicy, OverlapPolicy, RunStatus
from storage.queries import ticks
from storage.queries.ticks import RegionRow
from storage.schedule import ScheduleError, parse_schedule

log_name = "engine.tick"
log = logs.get(log_name)
BUFFER_POLL_S = 1.0
RUN, LATE = "run", "late"


async def tick(
    ctx: dict[str, Any],
    fire_ts: int | str,
    shard: int | bool | None = None,
    codes: list[str] | bool | None = None,
    manual: bool = False,
    backfill: bool = False,
) -> str:
    """arq entry point. Returns a line for arq's result: what became of the shard's regions."""
    rt: Runtime = ctx["runtime"]
    job_id: str = ctx["job_id"]
    if isinstance(fire_ts, str):
        # A job enqueued before shards existed: (region_code, fire_ts, manual).
        old_code, manual = fire_ts, bool(codes)
        fire_ts, shard, codes = int(shard or 0), None, [old_code]
    fire = datetime.fromtimestamp(int(fire_ts), UTC)
    only = list(codes) if isinstance(codes, list) else None
    number = shard if isinstance(shard, int) and not isinstance(shard, bool) else None
    try:
        with metrics.JOB_DURATION.labels("tick").time():
            report = await run_shard(rt, fire, number, only, job_id, manual or backfill, backfill)
    except DB_DOWN_ERRORS as exc:
        # The database is unreachable: try again later rather than lose the fire time.
        log.warning("tick.db_unavailable", shard=shard, job_id=job_id, error=str(exc))
        raise Retry(defer=min(5 * ctx.get("job_try", 1), 60)) from exc
    if report.waiting and only is not None:
        # A buffered follow-up (or a manual run) whose predecessor still runs: wait, deferred.
        raise Retry(defer=BUFFER_POLL_S)
    return report.line()


@dataclass
class ShardReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    waiting: list[str] = field(default_factory=list)

    def line(self) -> str:
        counted = {name: n for name, n in self.outcomes.items() if n}
        if not counted:
            return "empty"
        if len(counted) == 1:
            return next(iter(counted))
        return " ".join(f"{name}={n}" for name, n in sorted(counted.items()))


@dataclass(frozen=True, slots=True)
class FireFacts:
    """What a schedule says about one fire time (computed once per schedule in a shard)."""

    valid: bool  # the cron parses
    is_fire_time: bool = False
    successor: datetime | None = None


def facts(cron: str, timezone: str, fire: datetime) -> FireFacts:
    try:
        schedule = parse_schedule(cron, timezone)
    except ScheduleError:
        return FireFacts(False)
    if not schedule.is_fire_time(fire):
        return FireFacts(True)
    return FireFacts(True, True, schedule.next_fire(fire))


def decide(region: RegionRow, known: FireFacts, fire: datetime, now: datetime) -> str:
    """RUN, LATE (the catch-up policy decides) or why this fire time is not owed (pure)."""
    if not known.valid:
        return "invalid-cron"
    if not region.active:
        return "paused"
    if fire < region.schedule_since or not known.is_fire_time or known.successor is None:
        return "stale"
    late = now - fire > timedelta(seconds=region.misfire_grace_s)
    if known.successor <= now or (late and region.catchup_policy == CatchupPolicy.MISSED):
        return LATE
    return RUN


async def run_shard(
    rt: Runtime,
    fire: datetime,
    shard: int | None,
    codes: list[str] | None,
    job_id: str,
    manual: bool,
    backfill: bool = False,
) -> ShardReport:
    report = ShardReport()
    settings = rt.settings
    async with rt.db.autocommit() as session:
        table = await ticks.shard_region_rows(session, shard, settings.engine.tick_shards, codes)
    if codes is not None:
        report.outcomes["gone"] += len(set(codes) - {r.code for r in table})
    owed = table if manual else await _owed(rt, table, fire, shard, report)
    if not owed:
        return report
    follow_up = shard is not None and codes is None  # a buffered region waits in a follow-up
    # A backfill runs a past fire time whose ledger row is queued: the overlap policy is about
    # the live schedule, and applying it would skip most fire times of a backfill.
    to_claim = (
        owed if backfill else await _overlap(rt, owed, fire, job_id, manual, follow_up, report)
    )
    async with rt.db.autocommit() as session:
        claimed = await ticks.claim_many(
            session,
            region_codes=[r.code for r in to_claim],
            fire=fire,
            job_id=job_id,
            worker=rt.name,
            manual=manual,
        )
    report.outcomes["already-done"] += len(to_claim) - len(claimed)
    if not claimed:
        return report
    if not manual:
        lag = max((datetime.now(UTC) - fire).total_seconds(), 0)
        for _ in claimed:
            metrics.TICK_LAG.observe(lag)
    try:
        statuses, batches = await fan_out(rt, claimed, fire)
    except DB_DOWN_ERRORS:
        raise
    except Exception as exc:
        async with rt.db.autocommit() as session:
            await ticks.fail_runs(session, claimed, repr(exc))
        log.exception("tick.failed", shard=shard, fire=fire.isoformat(), job_id=job_id)
        report.outcomes["failed"] += len(claimed)
        metrics.TICKS.labels("failed").inc(len(claimed))
        return report
    per_region = logging.getLogger(log_name).isEnabledFor(logging.INFO)  # 10k lines cost
    for run in claimed:
        if run.run_id not in statuses:
            report.outcomes["taken-over"] += 1  # a newer attempt of this shard owns it now
            continue
        report.outcomes["ok"] += 1
        if per_region:
            log.info(
                "tick.ok",
                region=run.region_code,
                fire=fire.isoformat(),
                job_id=job_id,
                run_id=run.run_id,
                attempt=run.attempt,
                completed=statuses[run.run_id] == RunStatus.OK.value,
            )
    metrics.TICKS.labels("ok").inc(report.outcomes["ok"])
    log.info(
        "tick.shard",
        shard=shard,
        fire=fire.isoformat(),
        job_id=job_id,
        batches=batches,
        **{k.replace("-", "_"): v for k, v in report.outcomes.items() if v},
    )
    return report


async def _owed(
    rt: Runtime, table: list[RegionRow], fire: datetime, shard: int | None, report: ShardReport
) -> list[RegionRow]:
    """The regions that run at `fire`; also enqueues their successors' shard jobs."""
    now = datetime.now(UTC)
    known: dict[tuple[str, str], FireFacts] = {}
    verdicts: dict[str, str] = {}
    for region in table:
        schedule = (region.cron, region.timezone)
        if schedule not in known:
            known[schedule] = facts(region.cron, region.timezone, fire)
        verdicts[region.code] = decide(region, known[schedule], fire, now)
    for verdict in verdicts.values():
        if verdict not in (RUN, LATE):
            report.outcomes[verdict] += 1
    late = {code for code, verdict in verdicts.items() if verdict == LATE}
    if late:
        # As when an engine starts after a gap: the catch-up policy records what is missed and
        # enqueues what runs (the shards' jobs), for these regions.
        await scheduler.reconcile(rt, only=late, now=now)
        async with rt.db.autocommit() as session:
            missed = await ticks.final_regions(session, sorted(late), fire)
        report.outcomes["missed"] += len(missed)
        for code in missed:
            verdicts[code] = "missed"
    owed = [region for region in table if verdicts[region.code] in (RUN, LATE)]
    # First, so a long shard never delays the next fire time.
    if shard is not None:
        fires = {
            successor
            for region in owed
            if verdicts[region.code] == RUN
            and (successor := known[(region.cron, region.timezone)].successor) is not None
        }
        await tick_queue.enqueue_shards(
            rt.redis, rt.settings, (tick_queue.ShardTick(shard, f) for f in fires)
        )
    else:
        successors = [
            tick_queue.TickRequest(region.code, successor)
            for region in owed
            if verdicts[region.code] == RUN
            and (successor := known[(region.cron, region.timezone)].successor) is not None
        ]
        await tick_queue.enqueue_ticks(rt.redis, rt.settings, successors)
    return owed


async def _overlap(
    rt: Runtime,
    owed: list[RegionRow],
    fire: datetime,
    job_id: str,
    manual: bool,
    follow_up: bool,
    report: ShardReport,
) -> list[RegionRow]:
    """Regions free to run now; the others are recorded skipped or wait (buffer policy)."""
    since = datetime.now(UTC) - timedelta(seconds=rt.settings.engine.tick_timeout_s)
    async with rt.db.autocommit() as session:
        busy = await ticks.running_since(session, [r.code for r in owed], fire, since)
    ttl_ms = (rt.settings.engine.tick_timeout_s + 15) * 1000
    free: list[RegionRow] = []
    skipped: list[tuple[str, str]] = []
    buffered: list[str] = []
    for region in owed:
        slot = OwnedLock(
            rt.redis,
            redis_keys.tick_buffer_key(rt.settings, region.code),
            _buffer_owner(fire),
            ttl_ms,
        )
        holder = busy.get(region.code)
        if holder is None:
            if region.overlap_policy == OverlapPolicy.BUFFER:
                await slot.release()  # this fire time may have waited: its slot is free again
            free.append(region)
        elif region.overlap_policy == OverlapPolicy.BUFFER and await slot.acquire():
            buffered.append(region.code)
            log.info("tick.buffered", region=region.code, fire=fire.isoformat(), behind=holder)
        else:
            skipped.append((region.code, f"previous tick still running ({holder})"))
            log.info("tick.skipped", region=region.code, fire=fire.isoformat(), behind=holder)
    if skipped:
        async with rt.db.autocommit() as session:
            await ticks.record_final_many(
                session,
                rows=skipped,
                fire=fire,
                status=RunStatus.SKIPPED,
                job_id=job_id,
                manual=manual,
            )
        report.outcomes["skipped"] += len(skipped)
        metrics.TICKS.labels("skipped").inc(len(skipped))
    report.waiting = buffered
    if buffered:
        report.outcomes["buffered"] += len(buffered)
    if buffered and follow_up:
        shard = tick_queue.shard_of(rt.settings, buffered[0])
        waiter = tick_queue.ShardTick(
            shard,
            fire,
            codes=tuple(buffered),
            run_at=datetime.now(UTC) + timedelta(seconds=BUFFER_POLL_S),
        )
        await tick_queue.enqueue_shards(rt.redis, rt.settings, [waiter])
    return free


def _buffer_owner(fire: datetime) -> str:
    """The owner of a region's buffer slot: the fire time waiting in it."""
    return f"fire:{int(fire.timestamp())}"
