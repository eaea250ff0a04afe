"""Event ingestion figures for the operations overview (the app's events in `event_log`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event


async def events_per_minute(
    session: AsyncSession, since: datetime, until: datetime
) -> tuple[int, ...]:
    """Events received per minute from `since` to `until`, oldest first (zeros included).

    One grouped count over the BRIN index on `received_at`: cheap however big the log is.
    """
    minute = func.date_trunc("minute", Event.received_at)
    rows = await session.execute(
        select(minute, func.count())
        .where(Event.received_at >= since, Event.received_at < until)
        .group_by(minute)
    )
    counts = {bucket.replace(second=0, microsecond=0): int(n) for bucket, n in rows}
    start = since.replace(second=0, microsecond=0)
    minutes = int((until - start).total_seconds() // 60) + 1
    return tuple(counts.get(start + timedelta(minutes=i), 0) for i in range(minutes))
