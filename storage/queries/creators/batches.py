"""Fetch batches: one row per fetch job of a tick run, and their totals for the run's ledger.

No function commits: the caller owns the transaction (storage/database.py). A batch's
counts are written in the transaction of its results, so a killed attempt adds nothing and a
re-run never counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import literal, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import driver
from storage.models import FetchBatch, JobRun


async def add_batch_counts(
    session: AsyncSession,
    *,
    run_id: int,
    batch_no: int,
    platform: str,
    size: int,
    status: str,
    counts: dict[str, int],
    error: str | None = None,
) -> bool:
    """Add one attempt's counts to its batch row, in the caller's transaction.

    Written in the same transaction as the attempt's results, so a killed attempt adds
    nothing and a re-run (which skips creators already written) never counts twice.
    True when this is the batch's first report (its row is new).
    """
    existing = await session.get(FetchBatch, (run_id, batch_no), with_for_update=True)
    if existing is None:
        session.add(
            FetchBatch(
                run_id=run_id,
                batch_no=batch_no,
                platform=platform,
                size=size,
                status=status,
                counts=dict(counts),
                error=error,
            )
        )
        await session.flush()
        return True
    merged = dict(existing.counts or {})
    for name, value in counts.items():
        merged[name] = int(merged.get(name, 0)) + value
    existing.counts = merged
    existing.status = status
    existing.error = error
    existing.attempts = existing.attempts + 1
    existing.finished_at = datetime.now(UTC)
    await session.flush()
    return False


@dataclass
class BatchTotals:
    batches: int = 0
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def batch_totals(session: AsyncSession, run_id: int) -> BatchTotals:
    """The run's batches summed in SQL (cheap however many batches there are)."""
    conn = await driver(session)
    head = await conn.fetchrow(
        "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM fetch_batch "
        "WHERE run_id = $1",
        run_id,
    )
    sums = await conn.fetch(
        "SELECT e.key, sum(e.value::bigint) FROM fetch_batch b, jsonb_each_text(b.counts) e "
        "WHERE b.run_id = $1 AND e.value ~ '^-?[0-9]+$' GROUP BY e.key",
        run_id,
    )
    errors = await conn.fetch(
        "SELECT DISTINCT error FROM fetch_batch WHERE run_id = $1 AND error IS NOT NULL LIMIT 5",
        run_id,
    )
    return BatchTotals(
        batches=int(head[0]) if head else 0,
        done=int(head[1]) if head else 0,
        counts={str(r[0]): int(r[1]) for r in sums},
        errors=[str(r[0]) for r in errors],
    )


async def finished_batches(
    session: AsyncSession, run_id: int, first: int, last: int
) -> tuple[int, int]:
    """Of the run's batches numbered first..last: how many are done, and how many reported
    and wait to try again (deferred: breaker open, quota, transient errors)."""
    conn = await driver(session)
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'done'), "
        "count(*) FILTER (WHERE status = 'deferred') "
        "FROM fetch_batch WHERE run_id = $1 AND batch_no BETWEEN $2 AND $3",
        run_id,
        first,
        last,
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def merge_run_counts(session: AsyncSession, run_id: int, counts: dict[str, Any]) -> None:
    """Merge `counts` into a ledger row's counts (keys given replace those present)."""
    await session.execute(
        update(JobRun)
        .where(JobRun.id == run_id)
        .values(counts=JobRun.counts.op("||")(literal(counts, type_=JSONB)))
    )
