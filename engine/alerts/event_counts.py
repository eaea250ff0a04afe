"""Accepted and refused app events per minute in Redis, so the console can see the rejection
rate without Prometheus.

The api adds each batch's figures with one pipelined round trip (HINCRBY into the minute's hash,
which expires after `KEEP_S`); a reader sums the minutes of a window. A Redis hiccup never fails
a batch: the caller ignores errors here (Prometheus has its own counter of the same events).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from engine import redis_keys
from storage.settings import Settings

KEEP_S = 3600
RECORD_TIMEOUT_S = 0.25  # a slow Redis must not slow the events endpoint


def minute_key(settings: Settings, minute: int) -> str:
    return redis_keys.alert_events_key(settings, minute)


async def record(
    redis: Redis, settings: Settings, *, accepted: int, refused: int, now: datetime
) -> None:
    minute = int(now.timestamp()) // 60
    name = minute_key(settings, minute)
    async with redis.pipeline(transaction=False) as pipe:
        if accepted:
            pipe.hincrby(name, "accepted", accepted)
        if refused:
            pipe.hincrby(name, "refused", refused)
        pipe.expire(name, KEEP_S)
        await pipe.execute()


@dataclass(frozen=True, slots=True)
class EventCounts:
    accepted: int  # valid events (stored or duplicates)
    refused: int

    @property
    def refused_ratio(self) -> float | None:
        total = self.accepted + self.refused
        return self.refused / total if total else None


async def window(redis: Redis, settings: Settings, now: datetime, seconds: int) -> EventCounts:
    """The events of the minutes that overlap the last `seconds` (one pipelined round trip)."""
    last = int(now.timestamp()) // 60
    first = (int(now.timestamp()) - seconds) // 60 + 1
    async with redis.pipeline(transaction=False) as pipe:
        for minute in range(first, last + 1):
            pipe.hmget(minute_key(settings, minute), ["accepted", "refused"])
        rows = await pipe.execute()
    accepted = sum(int(row[0] or 0) for row in rows)
    refused = sum(int(row[1] or 0) for row in rows)
    return EventCounts(accepted, refused)
