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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arq.connections import ArqRedis

from engine import tick_queue
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
