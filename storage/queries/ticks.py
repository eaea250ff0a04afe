"""The run ledger at shard scale: one statement per step for every region of a tick shard.

A tick shard (engine.jobs.tick) claims the fire time of many regions at once, and a run row
completes when the last of its fetch batches reports, in that batch's own transaction:

- `claim_many`: one `INSERT … ON CONFLICT … RETURNING` for the shard. A region whose row already
  ended, or whose row was fanned out (`batches_expected` set), is not returned: it is never run
  twice. A row left `running` before its fan-out (its shard died) is taken over: attempt + 1.
  A `queued` row (a backfill's fire time, storage.queries.backfill) is claimed as a new one; a
  `cancelled` one has ended.
- `fan_out`: one UPDATE records how many batches each run waits for; a run that waits for none,
  or whose batches all reported already, completes in the same statement.
- `report_batch`: in the fetch job's transaction, after its `fetch_batch` row is written: the
  first report of a batch of the run's current attempt counts towards completion, and every
  report merges the batch totals into the row's counts (late batches still add theirs).

Costs: each function is one or two statements whatever the number of regions or batches.
None of them commits: the caller owns the transaction (the tick and fan-out use autocommit
sessions: each step is one self-contained statement; storage/database.py lists why).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import driver
from storage.models import Region, RunStatus

TICK = "tick"
# Batch numbers of a run's n-th attempt start at n * ATTEMPT_STRIDE (attempt 1 at 0): job ids
# stay unique, and a batch knows which attempt it belongs to.
ATTEMPT_STRIDE = 1_000_000


def batch_attempt(batch_no: int) -> int:
    return max(batch_no // ATTEMPT_STRIDE, 1)


def first_batch_no(attempt: int) -> int:
    return attempt * ATTEMPT_STRIDE if attempt > 1 else 0


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    run_id: int
    region_code: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RegionRow:
    """What a tick shard needs of a region (plain values: cheaper than ORM objects)."""

    code: str
    cron: str
    timezone: str
    active: bool
    overlap_policy: str
    catchup_policy: str
    misfire_grace_s: int
    schedule_since: datetime


async def shard_region_rows(
    session: AsyncSession, shard: int | None, count: int, codes: Sequence[str] | None
) -> list[RegionRow]:
    """The regions of one shard (`shard_key % count = shard`), or the named ones: one query."""
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT code, cron, timezone, active, overlap_policy, catchup_policy, misfire_grace_s, "
        "schedule_since FROM region WHERE ($1::int IS NULL OR shard_key % $2 = $1) "
        "AND ($3::text[] IS NULL OR code = ANY($3::text[])) ORDER BY code",
        shard,
        count,
        None if codes is None else list(codes),
    )
    return [RegionRow(*row) for row in rows]


async def shard_regions(
    session: AsyncSession,
    shards: Collection[int] | None,
    count: int,
    codes: Sequence[str] | None = None,
) -> list[Region]:
    """Regions of these shards (`shard_key % count`), or of the named ones, or both."""
    query = select(Region).order_by(Region.code)
    if codes is not None:
        query = query.where(Region.code.in_(list(codes)))
    if shards is not None:
        query = query.where((Region.shard_key % count).in_(sorted(shards)))
    return list(await session.scalars(query))


async def claim_many(
    session: AsyncSession,
    *,
    region_codes: Sequence[str],
    fire: datetime,
    job_id: str,
    worker: str,
    manual: bool,
    now: datetime | None = None,
) -> list[ClaimedRun]:
    """Start the runs of these regions at `fire`, or take over those a dead shard left unfanned.

    Regions absent from the answer already ran (or are running and fanned out): leave them.
    """
    if not region_codes:
        return []
    now = now or datetime.now(UTC)
    lag_ms = max(0, round((now - fire).total_seconds() * 1000))
    conn = await driver(session)
    rows = await conn.fetch(
        """
        INSERT INTO job_run (kind, region_code, scheduled_for, started_at, status, lag_ms,
                             attempt, worker, job_id, manual, counts, batches_reported)
        SELECT $1, code, $2, $3, 'running', $4, 1, $5, $6, $7, '{}'::jsonb, 0
        FROM unnest($8::text[]) AS code
        ON CONFLICT ON CONSTRAINT uq_job_run_fire DO UPDATE
           SET attempt = CASE WHEN job_run.status = 'queued' THEN 1
                              ELSE job_run.attempt + 1 END,
               started_at = coalesce(job_run.started_at, excluded.started_at),
               lag_ms = coalesce(job_run.lag_ms, excluded.lag_ms),
               status = 'running', worker = excluded.worker,
               job_id = excluded.job_id, batches_reported = 0
         WHERE (job_run.status = 'running' AND job_run.batches_expected IS NULL)
            OR job_run.status = 'queued'
        RETURNING id, region_code, attempt
        """,
        TICK,
        fire,
        now,
        lag_ms,
        worker,
        job_id,
        manual,
        list(region_codes),
    )
    return [ClaimedRun(int(r[0]), str(r[1]), int(r[2])) for r in rows]


async def running_since(
    session: AsyncSession, region_codes: Sequence[str], fire: datetime, since: datetime
) -> dict[str, str]:
    """Regions with another run still `running`, started after `since`: code -> its job id.

    The overlap policy's input. A run older than `since` (the tick time limit) is not waited for.
    """
    if not region_codes:
        return {}
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT DISTINCT ON (region_code) region_code, coalesce(job_id, worker, '?') "
        "FROM job_run WHERE kind = $1 AND status = 'running' AND region_code = ANY($2::text[]) "
        "AND scheduled_for <> $3 AND started_at >= $4 "
        "ORDER BY region_code, started_at DESC",
        TICK,
        list(region_codes),
        fire,
        since,
    )
    return {str(r[0]): str(r[1]) for r in rows}


async def final_regions(
    session: AsyncSession, region_codes: Sequence[str], fire: datetime
) -> set[str]:
    """Of these regions, those whose row for `fire` has ended (ok, failed, skipped, missed)."""
    if not region_codes:
        return set()
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT region_code FROM job_run WHERE kind = $1 AND scheduled_for = $2 "
        "AND region_code = ANY($3::text[]) AND status <> 'running'",
        TICK,
        fire,
        list(region_codes),
    )
    return {str(r[0]) for r in rows}


async def record_final_many(
    session: AsyncSession,
    *,
    rows: Sequence[tuple[str, str]],
    fire: datetime,
    status: RunStatus,
    job_id: str | None,
    manual: bool,
) -> int:
    """Skipped/missed rows for (region, error) at one fire time; existing rows win."""
    if not rows:
        return 0
    now = datetime.now(UTC)
    lag_ms = max(0, round((now - fire).total_seconds() * 1000))
    conn = await driver(session)
    written = await conn.fetch(
        """
        INSERT INTO job_run (kind, region_code, scheduled_for, finished_at, status, error,
                             lag_ms, duration_ms, attempt, job_id, manual, counts,
                             batches_reported)
        SELECT $1, r.code, $2, $3, $4, r.error, $5, 0, 1, $6, $7, '{}'::jsonb, 0
        FROM unnest($8::text[], $9::text[]) AS r(code, error)
        ON CONFLICT ON CONSTRAINT uq_job_run_fire DO NOTHING
        RETURNING id
        """,
        TICK,
        fire,
        now,
        status.value,
        lag_ms,
        job_id,
        manual,
        [code for code, _ in rows],
        [error for _, error in rows],
    )
    return len(written)


@dataclass(frozen=True, slots=True)
class FanOut:
    run_id: int
    attempt: int
    expected: int  # batches the run waits for (not those deferred behind an open breaker)
    counts: dict[str, Any]


_FAN_OUT = """
UPDATE job_run AS j
   SET batches_expected = v.expected,
       counts = j.counts || v.counts,
       status = CASE WHEN j.batches_reported >= v.expected THEN 'ok' ELSE j.status END,
       finished_at = CASE WHEN j.batches_reported >= v.expected THEN now() END,
       duration_ms = CASE WHEN j.batches_reported >= v.expected
                     THEN greatest(0, round(extract(epoch from now() - j.started_at) * 1000))
                     END
  FROM unnest($1::bigint[], $2::int[], $3::int[], $4::jsonb[]) AS v(id, attempt, expected, counts)
 WHERE j.id = v.id AND j.attempt = v.attempt AND j.status = 'running'
   AND j.batches_expected IS NULL
RETURNING j.id, j.status
"""


async def fan_out(session: AsyncSession, runs: Sequence[FanOut]) -> dict[int, str]:
    """Record each run's fan-out; returns run id -> status ('ok' when it completed already).

    A run taken over meanwhile by a newer attempt is left to that attempt (not returned).
    """
    if not runs:
        return {}
    conn = await driver(session)
    rows = await conn.fetch(
        _FAN_OUT,
        [r.run_id for r in runs],
        [r.attempt for r in runs],
        [r.expected for r in runs],
        [json.dumps(r.counts) for r in runs],
    )
    return {int(r[0]): str(r[1]) for r in rows}


async def fail_runs(session: AsyncSession, claimed: Sequence[ClaimedRun], error: str) -> None:
    """Runs of a shard that failed before its fan-out: recorded failed with the error."""
    if not claimed:
        return
    conn = await driver(session)
    await conn.execute(
        "UPDATE job_run AS j SET status = 'failed', error = $3, finished_at = now(), "
        "duration_ms = greatest(0, round(extract(epoch from now() - j.started_at) * 1000)) "
        "FROM unnest($1::bigint[], $2::int[]) AS v(id, attempt) "
        "WHERE j.id = v.id AND j.attempt = v.attempt AND j.status = 'running'",
        [c.run_id for c in claimed],
        [c.attempt for c in claimed],
        error[:2000],
    )


# Every SET expression reads the row as it was before this UPDATE: the same test, three times.
_REPORT = """
UPDATE job_run
   SET batches_reported = batches_reported + 1,
       status = CASE WHEN status = 'running' AND batches_expected IS NOT NULL
                      AND batches_reported + 1 >= batches_expected
                     THEN 'ok' ELSE status END,
       finished_at = CASE WHEN status = 'running' AND batches_expected IS NOT NULL
                      AND batches_reported + 1 >= batches_expected
                     THEN now() ELSE finished_at END,
       duration_ms = CASE WHEN status = 'running' AND batches_expected IS NOT NULL
                      AND batches_reported + 1 >= batches_expected
                     THEN greatest(0, round(extract(epoch from now() - started_at) * 1000))
                     ELSE duration_ms END
 WHERE id = $1
"""

_MERGE = """
UPDATE job_run SET counts = counts
    || coalesce((SELECT jsonb_object_agg(k, v) FROM (
           SELECT e.key AS k, sum(e.value::bigint) AS v
             FROM fetch_batch b, jsonb_each_text(b.counts) e
            WHERE b.run_id = $1 AND e.value ~ '^-?[0-9]+$' GROUP BY e.key) s), '{}'::jsonb)
    || jsonb_build_object('batches_done',
           (SELECT count(*) FROM fetch_batch WHERE run_id = $1 AND status = 'done'))
    || coalesce((SELECT jsonb_build_object('errors', jsonb_agg(error)) FROM (
           SELECT DISTINCT error FROM fetch_batch
            WHERE run_id = $1 AND error IS NOT NULL LIMIT 5) x
           HAVING count(*) > 0), '{}'::jsonb)
 WHERE id = $1
"""


async def report_batch(
    session: AsyncSession, *, run_id: int, batch_no: int, first_report: bool
) -> None:
    """A fetch batch of `run_id` reported (its `fetch_batch` row is written in this transaction).

    The first statement locks the run row, so the next ones (fresh snapshots under READ
    COMMITTED) see every batch committed before it: concurrent batches never lose counts. The
    lock is FOR NO KEY UPDATE: the `fetch_batch` insert's foreign key already holds FOR KEY
    SHARE on the row, and two batches upgrading to FOR UPDATE would deadlock.
    """
    conn = await driver(session)
    attempt = batch_attempt(batch_no)
    # Only the first report of a batch of the current attempt counts towards completion.
    count = await conn.fetchval(
        "SELECT CASE WHEN attempt = $2 AND $3::bool THEN 1 ELSE 0 END FROM job_run "
        "WHERE id = $1 FOR NO KEY UPDATE",
        run_id,
        attempt,
        first_report,
    )
    if count is None:
        return
    if count:
        await conn.execute(_REPORT, run_id)
    await conn.execute(_MERGE, run_id)


@dataclass(frozen=True, slots=True)
class Stale:
    region_code: str
    fire: datetime
    manual: bool


async def unfanned_claims(session: AsyncSession, before: datetime) -> list[Stale]:
    """Runs claimed before `before` whose shard never fanned them out (it died, Redis lost it)."""
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT region_code, scheduled_for, manual FROM job_run WHERE kind = $1 "
        "AND status = 'running' AND batches_expected IS NULL AND started_at < $2 LIMIT 10000",
        TICK,
        before,
    )
    return [Stale(str(r[0]), r[1], bool(r[2])) for r in rows if r[0] is not None]


async def unfan_running(session: AsyncSession) -> int:
    """Every running, fanned-out run goes back to "claimed, not fanned out" (its batches were
    lost with Redis): its shard's re-run takes it over and fans it out again."""
    conn = await driver(session)
    # A plain read first: the common case (none) takes no row lock on the ledger.
    found = await conn.fetch(
        "SELECT id FROM job_run WHERE kind = $1 AND status = 'running' "
        "AND batches_expected IS NOT NULL",
        TICK,
    )
    if not found:
        return 0
    rows = await conn.fetch(
        "UPDATE job_run SET batches_expected = NULL WHERE id = ANY($1::bigint[]) "
        "AND status = 'running' AND batches_expected IS NOT NULL RETURNING id",
        [int(r[0]) for r in found],
    )
    return len(rows)


async def close_abandoned(session: AsyncSession, before: datetime) -> int:
    """Fanned-out runs started before `before` whose batches never all reported (lost with
    Redis, say): completed with what they have; batches that still report add their counts.

    A plain read first: the common case (none) takes no row lock on the ledger."""
    conn = await driver(session)
    found = await conn.fetch(
        "SELECT id FROM job_run WHERE kind = $1 AND status = 'running' "
        "AND batches_expected IS NOT NULL AND started_at < $2 LIMIT 10000",
        TICK,
        before,
    )
    if not found:
        return 0
    rows = await conn.fetch(
        "UPDATE job_run SET status = 'ok', finished_at = now(), "
        "duration_ms = greatest(0, round(extract(epoch from now() - started_at) * 1000)), "
        "error = (batches_expected - batches_reported)::text || ' of ' "
        "|| batches_expected::text || ' fetch batches had not reported' "
        "WHERE id = ANY($1::bigint[]) AND status = 'running' RETURNING id",
        [int(r[0]) for r in found],
    )
    return len(rows)
