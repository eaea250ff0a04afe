"""Backfill in the run ledger: past fire times of a region an operator asks to run.

A backfill is bounded (`MAX_FIRES` fire times) and past only; `backfill_fires` refuses anything
else with a message that says what to change. Its fire times are written as ledger rows
`queued`, trigger 'backfill', with who asked, in ONE `INSERT … ON CONFLICT DO NOTHING`: a fire
time that already has a row (ran, skipped, missed, or another backfill's) is skipped by the
ledger's unique key, never duplicated. The tick claims a queued row like any other
(storage.queries.ticks.claim_many). A cancel turns the rows still `queued` into `cancelled` in
one UPDATE; a row a tick already claimed is `running` or ended, and is never touched.

A queued row whose job is gone (Redis flushed, or restarted without persistence) would stay
queued for ever: the engine's ledger sweep (engine.backfill.sweep_backfills) reads the queued
backfill rows (`queued_backfills`, the partial index ix_job_run_queued) and re-enqueues their
deterministic job ids, and ends with a reason (`fail_queued`, status `failed`) those that can no
longer run: their region was deleted, or their job ended without claiming them. Each end is
`WHERE status = 'queued'`, so a row a tick claimed meanwhile is never touched.

Costs: croniter steps for at most MAX_FIRES + 1 fire times; every query is one statement.
None of them commits: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import driver
from storage.schedule import Schedule
from storage.user_error import UserError

BACKFILL = "backfill"
MAX_FIRES = 1_000
_EPSILON = timedelta(microseconds=1)
_TICK = "tick"


class BackfillError(ValueError, UserError):
    """A backfill that cannot be asked for, with the reason."""

    title = "backfill refused"


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def backfill_fires(
    schedule: Schedule, start: datetime, end: datetime, now: datetime, limit: int = MAX_FIRES
) -> list[datetime]:
    """The schedule's fire times in [start, end] (UTC, ascending); BackfillError when the range
    is empty, reaches past `now`, holds no fire time, or holds more than `limit`."""
    if start.tzinfo is None or end.tzinfo is None:
        raise BackfillError("give both ends of the range with a timezone (e.g. +00:00)")
    if end < start:
        raise BackfillError(f"the range ends ({_stamp(end)}) before it starts ({_stamp(start)})")
    if end > now:
        raise BackfillError(
            f"the range ends in the future ({_stamp(end)}, now is {_stamp(now)}): "
            "a backfill runs past fire times only"
        )
    fires: list[datetime] = []
    for fire in schedule.fire_times_after(start - _EPSILON):
        if fire > end:
            break
        if len(fires) == limit:
            raise BackfillError(
                f"more than {limit:,} fire times between {_stamp(start)} and {_stamp(end)} "
                f"(fire time {limit + 1:,} is at {_stamp(fire)}): a backfill runs at most "
                f"{limit:,}; end the range before {_stamp(fire)} or split it"
            )
        fires.append(fire)
    if not fires:
        raise BackfillError(
            f"no fire time of {schedule.cron!r} ({schedule.timezone}) between "
            f"{_stamp(start)} and {_stamp(end)}"
        )
    return fires


@dataclass(frozen=True, slots=True)
class Queued:
    written: list[datetime]  # fire times this request wrote (the others already had a row)
    pending: list[datetime]  # every queued backfill fire time in the range (to enqueue)


async def queue_backfill(
    session: AsyncSession, region_code: str, fires: list[datetime], *, actor: str
) -> Queued:
    """Write the queued rows (existing fire times skipped) and read back every queued backfill
    fire time of the region in the range: two statements."""
    conn = await driver(session)
    written = await conn.fetch(
        """
        INSERT INTO job_run (kind, region_code, scheduled_for, status, attempt, manual, counts,
                             batches_reported, trigger, requested_by, started_at)
        SELECT $1, $2, f, 'queued', 1, true, '{}'::jsonb, 0, $3, $4, NULL
        FROM unnest($5::timestamptz[]) AS f
        ON CONFLICT ON CONSTRAINT uq_job_run_fire DO NOTHING
        RETURNING scheduled_for
        """,
        _TICK,
        region_code,
        BACKFILL,
        actor[:200],
        fires,
    )
    pending = await conn.fetch(
        "SELECT scheduled_for FROM job_run WHERE kind = $1 AND region_code = $2 "
        "AND status = 'queued' AND scheduled_for = ANY($3::timestamptz[]) ORDER BY 1",
        _TICK,
        region_code,
        fires,
    )
    return Queued(sorted(r[0] for r in written), [r[0] for r in pending])


async def cancel_backfill(
    session: AsyncSession,
    region_code: str,
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[datetime]:
    """Every queued backfill fire time of the region (in [start, end] when given) becomes
    `cancelled`; returns them. Rows a tick claimed (running, ended) are left as they are."""
    conn = await driver(session)
    rows = await conn.fetch(
        "UPDATE job_run SET status = 'cancelled', finished_at = $3 "
        "WHERE kind = $1 AND region_code = $2 AND status = 'queued' AND trigger = $4 "
        "AND ($5::timestamptz IS NULL OR scheduled_for >= $5) "
        "AND ($6::timestamptz IS NULL OR scheduled_for <= $6) RETURNING scheduled_for",
        _TICK,
        region_code,
        now,
        BACKFILL,
        start,
        end,
    )
    return sorted(r[0] for r in rows)


SWEEP_LIMIT = 10_000  # queued backfill rows one sweep looks at (oldest first; the rest next time)


@dataclass(frozen=True, slots=True)
class QueuedFire:
    region_code: str
    fire: datetime
    region_exists: bool


async def queued_backfills(session: AsyncSession, limit: int = SWEEP_LIMIT) -> list[QueuedFire]:
    """The queued backfill fire times, oldest first, and whether their region still exists:
    one statement over ix_job_run_queued (plus a primary-key probe of `region` per row)."""
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT j.region_code, j.scheduled_for, "
        "EXISTS (SELECT 1 FROM region r WHERE r.code = j.region_code) "
        "FROM job_run j WHERE j.status = 'queued' AND j.kind = $1 AND j.trigger = $2 "
        "AND j.region_code IS NOT NULL ORDER BY j.scheduled_for LIMIT $3",
        _TICK,
        BACKFILL,
        limit,
    )
    return [QueuedFire(str(r[0]), r[1], bool(r[2])) for r in rows]


async def fail_queued(
    session: AsyncSession, region_code: str, fires: list[datetime], *, reason: str, now: datetime
) -> list[datetime]:
    """These fire times of the region, if still queued, become `failed` with `reason`; returns
    those that did (a row a tick claimed meanwhile is left to it). One statement."""
    conn = await driver(session)
    rows = await conn.fetch(
        "UPDATE job_run SET status = 'failed', error = $3, finished_at = $4 "
        "WHERE kind = $1 AND region_code = $2 AND status = 'queued' AND trigger = $5 "
        "AND scheduled_for = ANY($6::timestamptz[]) RETURNING scheduled_for",
        _TICK,
        region_code,
        reason,
        now,
        BACKFILL,
        fires,
    )
    return sorted(r[0] for r in rows)
