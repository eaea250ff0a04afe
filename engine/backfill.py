"""Backfill: run a region's past fire times again, on an operator's request; and cancel it.

`request_backfill` computes the region's cron fire times in [start, end] (croniter, in the
region's timezone; at most storage.queries.backfill.MAX_FIRES, past only), writes them as
`queued` ledger rows with who asked (fire times already in the ledger are skipped by its unique
key), audits the request, commits, and only then enqueues one job per queued fire time
(`…:tick:{REGION}:{epoch}:backfill`, deterministic): two replicas, or the same request twice,
make one job per fire time and one row per fire time. Enqueueing every queued row of the range,
not only those this request wrote, re-enqueues what a crash between commit and enqueue lost.

`cancel_backfill` turns the region's queued backfill rows into `cancelled` (committed first, so
a job that starts meanwhile finds nothing to claim), then removes their jobs from the queue.
Rows a tick already claimed are never touched.

`sweep_backfills`, run by the scheduler's ledger sweep (engine.scheduler.sweep_ledger), keeps a
queued row from waiting for ever on a job that is gone (Redis flushed, restarted without
persistence, or the job expired unstarted): it re-enqueues the row's deterministic job (an id
that exists is left alone, and the ledger's unique key holds one row per fire time: never a
duplicate), and fails with a reason the rows that cannot run: their region was deleted, or their
job ended (its result is in Redis) without claiming them. Cost per sweep: one indexed read of the
queued backfill rows (at most storage.queries.backfill.SWEEP_LIMIT), two EXISTS per row in
pipelined round trips, and an UPDATE per region with rows to fail.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis

from engine import queues, tick_queue
from engine.runtime import Runtime
from storage.database import Database
from storage.queries import audit
from storage.queries import backfill as queries
from storage.queries.regions import RegionError, get_region
from storage.schedule import parse_schedule
from storage.settings import Settings


@dataclass(frozen=True, slots=True)
class BackfillReport:
    region_code: str
    fires: int  # fire times of the cron in the range
    written: int  # new queued rows (the rest already had a ledger row: skipped)
    enqueued: int  # jobs created (an existing job id is left alone)

    @property
    def skipped(self) -> int:
        return self.fires - self.written

    def line(self) -> str:
        return (
            f"{self.region_code}: {self.fires} fire time(s), {self.written} queued, "
            f"{self.skipped} already in the ledger (skipped), {self.enqueued} job(s) enqueued"
        )


async def request_backfill(
    db: Database,
    redis: ArqRedis,
    settings: Settings,
    code: str,
    start: datetime,
    end: datetime,
    *,
    actor: str,
    now: datetime,
) -> BackfillReport:
    """Queue the fire times of `code` in [start, end]; BackfillError/RegionError when refused."""
    async with db.transaction() as session:
        region = await get_region(session, code)
        if region is None:
            raise RegionError(f"no region {code!r}")
        schedule = parse_schedule(region.cron, region.timezone)
        fires = queries.backfill_fires(schedule, start, end, now)
        queued = await queries.queue_backfill(session, code, fires, actor=actor)
        await audit.record_action(
            session,
            actor=actor,
            action="backfill",
            entity="region",
            entity_id=code,
            details={
                "from": start.isoformat(),
                "to": end.isoformat(),
                "fires": len(fires),
                "queued": len(queued.written),
            },
        )
    requests = [tick_queue.TickRequest(code, fire, backfill=True) for fire in queued.pending]
    enqueued = await tick_queue.enqueue_ticks(redis, settings, requests)
    return BackfillReport(code, len(fires), len(queued.written), enqueued)


async def cancel_backfill(
    db: Database,
    redis: ArqRedis,
    settings: Settings,
    code: str,
    *,
    actor: str,
    now: datetime,
) -> int:
    """Cancel every queued backfill fire time of `code`; returns how many were cancelled."""
    async with db.transaction() as session:
        cancelled = await queries.cancel_backfill(session, code, now=now)
        await audit.record_action(
            session,
            actor=actor,
            action="backfill_cancel",
            entity="region",
            entity_id=code,
            details={"cancelled": len(cancelled)},
        )
    job_ids = [tick_queue.tick_job_id(settings, code, f, backfill=True) for f in cancelled]
    await tick_queue.remove_jobs(redis, settings, job_ids)
    return len(cancelled)


GONE_REGION = "its region was deleted before the backfill ran"
ENDED_JOB = "its job ended without running it (see the engine log for {job_id}); backfill again"


@dataclass(frozen=True, slots=True)
class BackfillSweep:
    requeued: int = 0  # jobs re-created for queued rows whose job was gone
    failed: int = 0  # queued rows that cannot run, ended with a reason


async def sweep_backfills(rt: Runtime, now: datetime) -> BackfillSweep:
    """Re-enqueue queued backfill rows whose job is gone; fail those that cannot run."""
    settings = rt.settings
    async with rt.db.session() as session:
        rows = await queries.queued_backfills(session)
    if not rows:
        return BackfillSweep()
    ids = {
        row: tick_queue.tick_job_id(settings, row.region_code, row.fire, backfill=True)
        for row in rows
    }
    states = await queues.job_states(rt.redis, ids.values())
    to_fail: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    requests = []
    for row, job_id in ids.items():
        if not row.region_exists:
            to_fail[(row.region_code, GONE_REGION)].append(row.fire)
        elif states[job_id] == "ended":
            to_fail[(row.region_code, ENDED_JOB.format(job_id=job_id))].append(row.fire)
        elif states[job_id] == "gone":
            requests.append(tick_queue.TickRequest(row.region_code, row.fire, backfill=True))
    failed = 0
    for (code, reason), fires in to_fail.items():
        async with rt.db.transaction() as session:
            failed += len(await queries.fail_queued(session, code, fires, reason=reason, now=now))
    requeued = await tick_queue.enqueue_ticks(rt.redis, settings, requests) if requests else 0
    return BackfillSweep(requeued, failed)
