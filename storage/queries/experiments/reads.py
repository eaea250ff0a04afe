"""Reads of the rollup tables (never raw events): what the api and the console show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class DailyRow:
    day: date
    event_name: str
    events: int
    units: int


async def read_daily(session: AsyncSession, start: date, end: date) -> list[DailyRow]:
    rows = await session.execute(
        text(
            "SELECT day, event_name, events, units FROM rollup_daily "
            "WHERE day >= :start AND day <= :end ORDER BY day, event_name"
        ),
        {"start": start, "end": end},
    )
    return [DailyRow(r.day, r.event_name, r.events, r.units) for r in rows]


@dataclass(frozen=True, slots=True)
class VariantRow:
    variant_key: str
    position: int
    weight: float
    window_end: date
    units: int
    conversions: int
    events: int


async def read_experiment_rollup(
    session: AsyncSession, experiment_id: int, window_days: int
) -> list[VariantRow]:
    rows = await session.execute(
        text(
            "SELECT r.variant_key, COALESCE(v.position, 1000) AS position, "
            "COALESCE(v.weight, 0) AS weight, r.window_end, r.units, r.conversions, r.events "
            "FROM rollup_experiment r LEFT JOIN experiment_variant v "
            "ON v.experiment_id = r.experiment_id AND v.key = r.variant_key "
            "WHERE r.experiment_id = :id AND r.window_days = :days "
            "ORDER BY position, r.variant_key"
        ),
        {"id": experiment_id, "days": window_days},
    )
    return [
        VariantRow(
            r.variant_key, r.position, r.weight, r.window_end, r.units, r.conversions, r.events
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class FunnelRow:
    experiment_key: str
    funnel_name: str
    variant_key: str
    step: int
    step_name: str
    units: int
    window_end: date


async def read_funnels(
    session: AsyncSession,
    window_days: int,
    funnel_name: str | None = None,
    experiment_id: int | None = None,
) -> list[FunnelRow]:
    rows = await session.execute(
        text(
            "SELECT x.key AS experiment_key, r.funnel_name, r.variant_key, r.step, r.step_name, "
            "r.units, r.window_end FROM rollup_funnel r "
            "JOIN experiment x ON x.id = r.experiment_id "
            "LEFT JOIN experiment_variant v ON v.experiment_id = r.experiment_id "
            "AND v.key = r.variant_key "
            "WHERE r.window_days = :days "
            "AND (CAST(:funnel AS text) IS NULL OR r.funnel_name = :funnel) "
            "AND (CAST(:exp AS bigint) IS NULL OR r.experiment_id = :exp) "
            "ORDER BY x.key, r.funnel_name, COALESCE(v.position, 1000), r.variant_key, r.step"
        ),
        {"days": window_days, "funnel": funnel_name, "exp": experiment_id},
    )
    return [
        FunnelRow(
            r.experiment_key,
            r.funnel_name,
            r.variant_key,
            r.step,
            r.step_name,
            r.units,
            r.window_end,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Summary:
    experiments: dict[str, int]
    days: int
    first_day: date | None
    last_day: date | None
    events: int
    event_names: int
    last_rollup_at: datetime | None


async def read_summary(session: AsyncSession) -> Summary:
    counts = await session.execute(
        text("SELECT status, count(*) AS n FROM experiment GROUP BY status ORDER BY status")
    )
    daily = (
        await session.execute(
            text(
                "SELECT count(DISTINCT day) AS days, min(day) AS first, max(day) AS last, "
                "COALESCE(sum(events), 0) AS events, count(DISTINCT event_name) AS names "
                "FROM rollup_daily"
            )
        )
    ).one()
    last = await session.scalar(
        text("SELECT max(finished_at) FROM rollup_runs WHERE status = 'ok'")
    )
    return Summary(
        experiments={r.status: r.n for r in counts},
        days=daily.days,
        first_day=daily.first,
        last_day=daily.last,
        events=int(daily.events),
        event_names=daily.names,
        last_rollup_at=last,
    )


async def experiment_traffic(session: AsyncSession) -> dict[int, int]:
    """Assigned units per experiment (for the console's list)."""
    rows = await session.execute(
        text("SELECT experiment_id, count(*) AS n FROM assignment GROUP BY experiment_id")
    )
    return {r.experiment_id: r.n for r in rows}
