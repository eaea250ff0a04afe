"""What the alert conditions read from Postgres, and alert silences (written with an audit row).

Every function takes a session and never commits: the caller owns the transaction (the console's
silence edit commits once, with its audit row).

Costs (a ledger of millions of rows, 10,000 regions): `region_fires` is one index probe per
active region on `ix_job_run_region_scheduled` (its latest fire time), grouped in PostgreSQL
by schedule and that time (a row per group, not per region); `tick_stats` reads the ledger
rows of one window through `ix_job_run_scheduled` and the partial index of running rows; the
others are counts over small sets (failed or unknown publications, pending dead letters,
connections, silences).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.models import (
    AlertSilence,
    Connection,
    ConnectionStatus,
    DeadLetter,
    DeadLetterStatus,
    JobRun,
    Publication,
    PublicationStatus,
    Region,
    Role,
    RunStatus,
)
from storage.permissions import Actor, actor_name
from storage.queries import audit

TICK = "tick"


@dataclass(frozen=True, slots=True)
class RegionFires:
    """The active regions whose next fire counts from the same moment on the same schedule."""

    cron: str
    timezone: str
    after: datetime  # the later of their latest ledger fire time (not manual) and schedule_since
    codes: str  # their codes joined by newlines (codes match ^[A-Z][A-Z0-9_]+$), in order


async def region_fires(session: AsyncSession) -> list[RegionFires]:
    """Every active region with the moment its next fire time counts from (its latest fire
    time in the ledger, or when its schedule began), one row per (cron, timezone, moment):
    regions ticked together share theirs, so 100,000 regions come back as about as many rows
    as there are schedules, not a row (and objects) per region."""
    latest = (
        select(func.max(JobRun.scheduled_for))
        .where(
            JobRun.region_code == Region.code,
            JobRun.kind == TICK,
            JobRun.manual.is_(False),
        )
        .scalar_subquery()
    )
    since = Region.schedule_since
    regions = (
        select(
            Region.code,
            Region.cron,
            Region.timezone,
            func.greatest(func.coalesce(latest, since), since).label("after"),
        )
        .where(Region.active.is_(True))
        .subquery()
    )
    codes = func.string_agg(regions.c.code, aggregate_order_by(literal("\n"), regions.c.code))
    rows = await session.execute(
        select(regions.c.cron, regions.c.timezone, regions.c.after, codes)
        .group_by(regions.c.cron, regions.c.timezone, regions.c.after)
        .order_by(func.min(regions.c.code))
    )
    return [RegionFires(*row) for row in rows]


# A tick that started in the window was scheduled at most this long before it (lets the window
# use the ledger's index on scheduled_for; a tick later than a day is an incident of its own).
_LEDGER_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TickStats:
    ok: int  # ticks that finished ok since the window start
    failed: int
    lag_p99_ms: float | None  # of ticks that started since the window start
    oldest_running_started: datetime | None  # the longest-running tick's start


async def tick_stats(session: AsyncSession, since: datetime) -> TickStats:
    finished = (
        await session.execute(
            select(JobRun.status, func.count())
            .where(
                JobRun.kind == TICK,
                JobRun.scheduled_for >= since - _LEDGER_SLACK,
                JobRun.finished_at >= since,
                JobRun.status.in_((RunStatus.OK.value, RunStatus.FAILED.value)),
            )
            .group_by(JobRun.status)
        )
    ).all()
    counts = {status: int(n) for status, n in finished}
    p99 = await session.scalar(
        select(func.percentile_cont(0.99).within_group(JobRun.lag_ms)).where(
            JobRun.kind == TICK,
            JobRun.scheduled_for >= since - _LEDGER_SLACK,
            JobRun.started_at >= since,
            JobRun.lag_ms.is_not(None),
        )
    )
    oldest = await session.scalar(
        select(func.min(JobRun.started_at)).where(
            JobRun.kind == TICK, JobRun.status == RunStatus.RUNNING.value
        )
    )
    return TickStats(
        ok=counts.get(RunStatus.OK.value, 0),
        failed=counts.get(RunStatus.FAILED.value, 0),
        lag_p99_ms=float(p99) if p99 is not None else None,
        oldest_running_started=oldest,
    )


@dataclass(frozen=True, slots=True)
class Counted:
    count: int
    since: datetime | None  # the earliest of the counted rows (when the condition began)


async def publications_failed(session: AsyncSession, since: datetime) -> Counted:
    """Publications that failed for good since `since` (their last change is the failure)."""
    count, first = (
        await session.execute(
            select(func.count(), func.min(Publication.updated_at)).where(
                Publication.status == PublicationStatus.FAILED.value,
                Publication.updated_at >= since,
            )
        )
    ).one()
    return Counted(int(count), first)


async def publications_unknown(session: AsyncSession) -> Counted:
    """Publications whose outcome is unknown: each waits for a person to resolve it."""
    count, first = (
        await session.execute(
            select(func.count(), func.min(Publication.updated_at)).where(
                Publication.status == PublicationStatus.UNKNOWN.value
            )
        )
    ).one()
    return Counted(int(count), first)


@dataclass(frozen=True, slots=True)
class DeadLetterStats:
    pending: int
    recent: Counted  # pending letters that failed since the window start


async def dead_letter_stats(session: AsyncSession, since: datetime) -> DeadLetterStats:
    pending, recent, first = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(DeadLetter.last_failed_at >= since),
                func.min(DeadLetter.last_failed_at).filter(DeadLetter.last_failed_at >= since),
            ).where(DeadLetter.status == DeadLetterStatus.PENDING.value)
        )
    ).one()
    return DeadLetterStats(int(pending), Counted(int(recent), first))


async def token_expiry_per_platform(session: AsyncSession) -> dict[str, datetime]:
    """The soonest token expiry of the connected (status ok) accounts of each platform; tokens
    the engine refreshes (a refresh token is stored) are left out: they are not going to lapse."""
    rows = await session.execute(
        select(Connection.platform, func.min(Connection.expires_at))
        .where(
            Connection.status == ConnectionStatus.OK.value,
            Connection.expires_at.is_not(None),
            Connection.refresh_token_encrypted.is_(None),
        )
        .group_by(Connection.platform)
    )
    return {platform: when for platform, when in rows if when is not None}


# Silences.


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    condition: str
    until: datetime
    reason: str
    actor: str
    created_at: datetime


async def active_silences(session: AsyncSession, now: datetime) -> dict[str, Silence]:
    """The silence of each silenced condition (the one that lasts longest)."""
    rows = await session.scalars(
        select(AlertSilence).where(AlertSilence.until > now).order_by(AlertSilence.until)
    )
    return {
        row.condition: Silence(
            row.id, row.condition, row.until, row.reason, row.actor, row.created_at
        )
        for row in rows
    }


async def add_silence(
    session: AsyncSession,
    *,
    condition: str,
    until: datetime,
    reason: str,
    actor: Actor,
) -> int:
    """Silence `condition` until `until`, with an audit row. The caller commits."""
    permissions.require(actor, Role.EDITOR, "silence alerts")
    silence = AlertSilence(condition=condition, until=until, reason=reason, actor=actor_name(actor))
    session.add(silence)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="alert.silence",
        entity="alert",
        entity_id=condition,
        before=None,
        after={"silence_id": silence.id, "until": until.isoformat(), "reason": reason},
    )
    return silence.id


async def end_silences(
    session: AsyncSession, *, condition: str, now: datetime, actor: Actor
) -> int:
    """End every active silence of `condition` now, with an audit row. The caller commits."""
    permissions.require(actor, Role.EDITOR, "silence alerts")
    ended = (
        await session.execute(
            update(AlertSilence)
            .where(AlertSilence.condition == condition, AlertSilence.until > now)
            .values(until=now)
            .returning(AlertSilence.id, AlertSilence.until)
        )
    ).all()
    if ended:
        before: dict[str, Any] = {"silence_ids": [row.id for row in ended]}
        audit.record(
            session,
            actor=actor,
            action="alert.unsilence",
            entity="alert",
            entity_id=condition,
            before=before,
            after={"until": now.isoformat()},
        )
    return len(ended)
