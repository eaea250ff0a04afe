"""Partition maintenance and retention: an arq cron job on the rollups queue.

Every run first downsamples follower_sample into hourly and daily series
(storage/queries/series.py), then, for event_log (daily) and follower_sample (monthly):
1. retention: rows of the DEFAULT older than the cutoff are deleted, partitions that end at
   or before the cutoff are dropped (`EVENT_RETENTION_DAYS`, `SAMPLE_RETENTION_DAYS`; 0 keeps
   everything), and `retention_horizon` records how far the table was cut (rollups never
   recompute, so never erase, the days before it);
2. partitions: the current one and `ahead` more exist; any partition the DEFAULT holds rows
   for is created and takes those rows over. So a row never waits for its partition and is
   never lost: it sits in the DEFAULT until the next run.

Each partition is one short transaction under the table's advisory lock with a lock timeout,
so replicas never race and ingestion is never stuck behind DDL; a step that times out is
logged and done by the next run (hourly; partitions are made days ahead, and until they
exist rows wait in the DEFAULT). Idempotent throughout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arq.cron import CronJob, cron
from sqlalchemy.ext.asyncio import AsyncSession

from engine import logs, redis_keys
from storage import partitions as p
from storage.database import Database
from storage.queries import partitions as q
from storage.queries import series
from storage.settings import Settings

MAINTAIN_FUNCTION = "maintain_partitions"
CRON_MINUTE = 7
TIMEOUT_S = 1800

log = logs.get("engine.jobs.maintenance")


@dataclass
class TableReport:
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    dropped: list[str] = field(default_factory=list)
    drop_s: float = 0.0  # the retention transaction (drops are catalog operations)
    deleted_default_rows: int = 0
    failed: list[str] = field(default_factory=list)


def keep_days(settings: Settings, table: p.PartitionedTable) -> int:
    return settings.retention.event_days if table is p.EVENTS else settings.retention.sample_days


async def maintain_table(
    db: Database, table: p.PartitionedTable, keep: int, now: datetime
) -> TableReport:
    report = TableReport()
    cutoff = p.retention_cutoff(table, now, keep)
    if cutoff is not None:
        # The first partition start at or before the cutoff: everything before it goes.
        edge = p.floor(table, cutoff)
        started = time.perf_counter()
        async with db.transaction() as session:
            await q.lock_table(session, table)
            report.deleted_default_rows = await q.delete_default_before(session, table, edge)
            for part in await q.partitions(session, table):
                if part.start is not None and p.following(table, part.start) <= edge:
                    await q.drop_partition(session, part.name)
                    report.dropped.append(part.name)
            await q.raise_horizon(session, table, edge)
        report.drop_s = time.perf_counter() - started
    async with db.session() as session:
        waiting = await q.default_starts(session, table)
    upcoming = p.starts_between(table, now, now)
    for _ in range(table.ahead):
        upcoming.append(p.following(table, upcoming[-1]))
    edge_start = p.floor(table, cutoff) if cutoff is not None else None
    for start in sorted(set(waiting) | set(upcoming)):
        if edge_start is not None and start < edge_start:
            continue
        name = p.name_of(table, start)
        try:
            async with db.transaction() as session:
                await q.lock_table(session, table)
                moved = await q.ensure_partition(session, table, start)
        except Exception as exc:  # a lock timeout, say: the next run tries again
            log.warning("partitions.create_failed", partition=name, error=repr(exc))
            report.failed.append(name)
            continue
        if moved is not None:
            report.created.append(name)
            report.moved_rows += moved
    return report


async def downsample(db: Database, now: datetime) -> dict[str, int]:
    """Hourly and daily follower series over the last LOOK_BACK; the first time, from the
    oldest sample on, one month per transaction (a year of 100,000 creators is 73 M samples).
    Runs before retention, so the daily series holds what the dropped samples said."""
    written: dict[str, int] = {}
    for resolution in series.RESOLUTIONS:
        async with db.session() as session:
            done = await series.done_until(session, resolution)
            oldest = await _oldest_sample(session)
        # Past the first run, only the look-back (late fetches); the first time, everything.
        since = done - series.LOOK_BACK if done is not None else (oldest or now)
        if resolution == "hour":  # hourly buckets are kept HOURLY_KEEP: none older to write
            since = max(since, now - series.HOURLY_KEEP)
        written[resolution] = 0
        chunks = p.starts_between(p.SAMPLES, since, now)
        for index, month in enumerate(chunks):
            last = index == len(chunks) - 1
            async with db.transaction() as session:
                written[resolution] += await series.downsample(
                    session,
                    resolution,
                    max(since, month),
                    None if last else p.following(p.SAMPLES, month),
                )
                if last:
                    end = series.bucket_start(resolution, now)
                    await series.set_done_until(session, resolution, end)
                    if resolution == "hour":
                        await series.prune_hourly(session, now - series.HOURLY_KEEP)
    log.info("series.downsampled", **written)
    return written


async def _oldest_sample(session: AsyncSession) -> datetime | None:
    """Start of the oldest sample partition, or of the DEFAULT's oldest row."""
    parts = await q.partitions(session, p.SAMPLES)
    starts = [x.start for x in parts if x.start is not None]
    waiting = await q.default_starts(session, p.SAMPLES)
    found = starts + waiting
    return min(found) if found else None


async def maintain(db: Database, settings: Settings, now: datetime) -> dict[str, TableReport]:
    await downsample(db, now)
    reports = {}
    for table in p.TABLES:
        report = await maintain_table(db, table, keep_days(settings, table), now)
        reports[table.name] = report
        log.info(
            "partitions.maintained",
            table=table.name,
            created=report.created,
            moved_rows=report.moved_rows,
            dropped=report.dropped,
            deleted_default_rows=report.deleted_default_rows,
            failed=report.failed,
        )
    return reports


async def maintain_partitions(ctx: dict[str, Any]) -> dict[str, Any]:
    """The cron entry point (ctx["runtime"] is the engine's Runtime)."""
    rt = ctx["runtime"]
    reports = await maintain(rt.db, rt.settings, datetime.now(UTC))
    return {
        name: {"created": len(r.created), "dropped": len(r.dropped), "moved": r.moved_rows}
        for name, r in reports.items()
    }


def cron_jobs(settings: Settings) -> list[CronJob]:
    return [
        cron(
            maintain_partitions,
            # The name makes the job id: one per fire time however many replicas run.
            name=redis_keys.cron_name(settings, MAINTAIN_FUNCTION),
            minute={CRON_MINUTE},
            unique=True,
            timeout=TIMEOUT_S,
            max_tries=3,
        )
    ]
