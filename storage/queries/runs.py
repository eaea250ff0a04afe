"""The run ledger: claim a fire time exactly once, finish it, and read it back.

No function commits: the caller owns the transaction (a claim is one statement, so an
autocommit session makes it a committed claim on its own)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import JobRun, RunStatus

TICK = "tick"


@dataclass(frozen=True, slots=True)
class Claim:
    run_id: int
    attempt: int


def _ms(delta_seconds: float) -> int:
    return max(0, round(delta_seconds * 1000))


async def claim(
    session: AsyncSession,
    *,
    kind: str,
    region_code: str | None,
    scheduled_for: datetime,
    job_id: str,
    worker: str,
    manual: bool = False,
) -> Claim | None:
    """Start a run, or take over one whose worker died. None: this fire time already ended."""
    now = datetime.now(UTC)
    stmt = insert(JobRun).values(
        kind=kind,
        region_code=region_code,
        scheduled_for=scheduled_for,
        started_at=now,
        status=RunStatus.RUNNING.value,
        lag_ms=_ms((now - scheduled_for).total_seconds()),
        attempt=1,
        worker=worker,
        job_id=job_id,
        manual=manual,
    )
    upsert = stmt.on_conflict_do_update(
        constraint="uq_job_run_fire",
        set_={
            "attempt": JobRun.attempt + 1,
            "worker": stmt.excluded.worker,
            "job_id": stmt.excluded.job_id,
        },
        where=JobRun.status == RunStatus.RUNNING.value,
    ).returning(JobRun.id, JobRun.attempt)
    row = (await session.execute(upsert)).first()
    return Claim(row.id, row.attempt) if row else None


async def finish(
    session: AsyncSession,
    run_id: int,
    *,
    status: RunStatus,
    error: str | None = None,
    counts: dict[str, Any] | None = None,
) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "status": status.value,
        "finished_at": now,
        "duration_ms": func.greatest(
            0, func.round(func.extract("epoch", now - JobRun.started_at) * 1000)
        ),
        "error": error,
    }
    if counts is not None:
        values["counts"] = counts
    await session.execute(update(JobRun).where(JobRun.id == run_id).values(**values))


async def record_final(
    session: AsyncSession,
    *,
    kind: str,
    region_code: str,
    fire_times: Iterable[datetime],
    status: RunStatus,
    error: str,
    job_id: str | None = None,
    manual: bool = False,
) -> int:
    """Write skipped/missed rows for fire times that will not run; existing rows win."""
    now = datetime.now(UTC)
    rows = [
        {
            "kind": kind,
            "region_code": region_code,
            "scheduled_for": fire,
            "finished_at": now,
            "status": status.value,
            "error": error,
            "lag_ms": _ms((now - fire).total_seconds()),
            "duration_ms": 0,
            "job_id": job_id,
            "manual": manual,
        }
        for fire in fire_times
    ]
    if not rows:
        return 0
    stmt = insert(JobRun).values(rows).on_conflict_do_nothing(constraint="uq_job_run_fire")
    result = await session.execute(stmt.returning(JobRun.id))
    return len(result.all())


async def is_final(session: AsyncSession, *, kind: str, region_code: str, fire: datetime) -> bool:
    status = await session.scalar(
        select(JobRun.status).where(
            JobRun.kind == kind, JobRun.region_code == region_code, JobRun.scheduled_for == fire
        )
    )
    return status is not None and status != RunStatus.RUNNING.value


async def latest_fire_per_region(session: AsyncSession, kind: str = TICK) -> dict[str, datetime]:
    rows = await session.execute(
        select(JobRun.region_code, func.max(JobRun.scheduled_for))
        .where(JobRun.kind == kind, JobRun.manual.is_(False))
        .group_by(JobRun.region_code)
    )
    return {code: when for code, when in rows if code is not None}


async def list_runs(
    session: AsyncSession,
    *,
    region_code: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[JobRun]:
    query = select(JobRun).order_by(JobRun.scheduled_for.desc(), JobRun.id.desc()).limit(limit)
    if region_code:
        query = query.where(JobRun.region_code == region_code)
    if status:
        query = query.where(JobRun.status == status)
    return list(await session.scalars(query))


async def failures_since(session: AsyncSession, since: datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(JobRun)
        .where(JobRun.status == RunStatus.FAILED.value, JobRun.finished_at >= since)
    )
    return int(count or 0)


@dataclass(frozen=True, slots=True)
class LastRun:
    status: str
    lag_ms: int | None
    scheduled_for: datetime


async def last_runs_of(
    session: AsyncSession, codes: Collection[str], kind: str = TICK
) -> dict[str, LastRun]:
    """The latest run of each of these regions (the rows a console table shows): one backward
    index scan per code on uq_job_run_fire, so the cost follows len(codes), not the ledger."""
    if not codes:
        return {}
    rows = await session.execute(
        select(JobRun.region_code, JobRun.status, JobRun.lag_ms, JobRun.scheduled_for)
        .where(JobRun.kind == kind, JobRun.region_code.in_(list(codes)))
        .ext(distinct_on(JobRun.region_code))
        .order_by(JobRun.region_code, JobRun.scheduled_for.desc())
    )
    return {
        code: LastRun(status, lag_ms, scheduled_for)
        for code, status, lag_ms, scheduled_for in rows
        if code is not None
    }


async def last_run_summary_per_region(
    session: AsyncSession, kind: str = TICK
) -> dict[str, LastRun]:
    """The latest run of each region as plain values (a cheap read for the console's refresh)."""
    rows = await session.execute(
        select(JobRun.region_code, JobRun.status, JobRun.lag_ms, JobRun.scheduled_for)
        .where(JobRun.kind == kind, JobRun.region_code.is_not(None))
        .ext(distinct_on(JobRun.region_code))
        .order_by(JobRun.region_code, JobRun.scheduled_for.desc())
    )
    return {
        code: LastRun(status, lag_ms, scheduled_for)
        for code, status, lag_ms, scheduled_for in rows
        if code is not None
    }
