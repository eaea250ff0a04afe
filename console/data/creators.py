"""The console's read model for creator tracking: creators, samples, dead letters, and the
health of each platform (breaker state, quota use). Loaded through storage.queries and
engine.resilience; the screens call these from Textual workers.

Edits (each one audited write): `set_creator_status`, `requeue_letters`, `drop_letters`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from arq.connections import ArqRedis

from console.data.acting import acting, acting_now
from console.data.common import STORE_ERRORS
from engine import dead_letters as dead_letter_ops
from engine.platforms.registry import build_adapters
from engine.resilience import CircuitBreaker, RateLimiter
from storage.database import Database
from storage.models import Creator, CreatorStatus, DeadLetter, TrackedPlatform
from storage.queries import creators, dead_letters
from storage.queries.creators import CreatorRow
from storage.queries.series import Point, follower_series
from storage.settings import Settings

if TYPE_CHECKING:
    from console.deck import Deck

# Types the screens name (they import no storage module).
__all__ = ["CreatorRow", "CreatorStatus", "DeadLetter", "TrackedPlatform"]

# The Creators table reads the creators on and around the screen: a window of this many rows
# (a few screens) at the scroll position, plus the count of all that match the filters.
WINDOW_ROWS = 200

HEALTH_ERRORS: tuple[type[Exception], ...] = (*STORE_ERRORS, ValueError, LookupError)


@dataclass(frozen=True, slots=True)
class CreatorFilters:
    region: str | None = None
    platform: str | None = None
    status: str | None = None
    search: str | None = None


@dataclass(frozen=True, slots=True)
class CreatorsView:
    rows: tuple[CreatorRow, ...]  # the window: rows[0] is creator number `offset` in the list
    by_status: tuple[tuple[str, int], ...]
    regions: tuple[str, ...]
    offset: int = 0
    total: int = 0  # creators matching the filters (the table's length)
    filters: CreatorFilters = CreatorFilters()


async def load_creators(
    db: Database, now: datetime, filters: CreatorFilters, offset: int = 0
) -> CreatorsView:
    """The window of WINDOW_ROWS creators from `offset`, and how many match in all."""
    async with db.session() as session:
        where = {
            "region_code": filters.region,
            "platform": filters.platform,
            "status": filters.status,
            "search": filters.search,
        }
        total = await creators.count_creators(session, **where)
        offset = max(0, min(offset, total - WINDOW_ROWS))
        rows = await creators.list_creators(
            session, now=now, limit=WINDOW_ROWS, offset=offset, **where
        )
        by_status = await creators.status_counts(session)
        regions = await creators.region_codes(session)
    return CreatorsView(
        tuple(rows),
        tuple(sorted(by_status.items())),
        tuple(sorted(regions)),
        offset=offset,
        total=total,
        filters=filters,
    )


@dataclass(frozen=True, slots=True)
class PlatformHealth:
    platform: str
    breaker: str
    reason: str | None
    open_until: datetime | None
    used: int
    limit: int
    per_s: int
    paused_for_s: float


# One rate-limiter reader per Redis pool: its `limits` storage holds connections bound to the
# pool's event loop, so it must not outlive the app (a new console, or a test, gets its own).
_limiters: weakref.WeakKeyDictionary[ArqRedis, RateLimiter] = weakref.WeakKeyDictionary()


async def platform_health_or_none(deck: Deck) -> tuple[PlatformHealth, ...] | None:
    """`load_platform_health`, or None when Redis is away or the platform settings are unusable
    (NotConfigured is a LookupError, invalid settings a ValueError): the caller says so."""
    try:
        redis = await deck.queue_pool()
        return await load_platform_health(redis, deck.settings)
    except HEALTH_ERRORS:
        return None


async def load_platform_health(redis: ArqRedis, settings: Settings) -> tuple[PlatformHealth, ...]:
    """Breaker state and quota use of every configured platform (engine.resilience)."""
    limiter = _limiters.get(redis)
    if limiter is None:
        limiter = _limiters[redis] = RateLimiter(redis, settings)
    found = []
    for name, adapter in sorted(build_adapters(settings.tracking).items()):
        status = await CircuitBreaker(redis, settings, name).status()
        usage = await limiter.usage(adapter.quota, adapter.token_id)
        found.append(
            PlatformHealth(
                platform=name,
                breaker=status.state.value,
                reason=status.reason,
                open_until=status.open_until,
                used=usage.used,
                limit=usage.limit,
                per_s=usage.per_s,
                paused_for_s=usage.paused_for_s,
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class CreatorDetail:
    creator: Creator
    samples: tuple[Point, ...]  # downsampled: raw, hourly or daily by the chart's span
    letters: tuple[DeadLetter, ...]
    resolution: str = "raw"


async def load_creator_detail(
    db: Database, creator_id: int, now: datetime, days: int = 30
) -> CreatorDetail | None:
    async with db.session() as session:
        creator = await creators.get_creator(session, creator_id)
        if creator is None:
            return None
        resolution, points = await follower_series(
            session, creator_id, now - timedelta(days=days), now
        )
        letters = [
            letter
            for letter in await dead_letters.list_letters(session, kind=dead_letters.FETCH)
            if letter.creator_id == creator_id
        ]
    return CreatorDetail(creator, tuple(points), tuple(letters), resolution or "raw")


async def load_dead_letters(db: Database) -> tuple[DeadLetter, ...]:
    async with db.session() as session:
        return tuple(await dead_letters.list_letters(session))


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int], width: int = 12) -> str:
    """The last `width` values as block characters, scaled between their min and max.

    Fewer than two values make no trend: an empty string, not a flat bar that looks like one.
    """
    tail = values[-width:]
    if len(tail) < 2:
        return ""
    low, high = min(tail), max(tail)
    if high == low:
        return SPARK[3] * len(tail)
    span = high - low
    return "".join(SPARK[min(7, (v - low) * 8 // span)] for v in tail)


def chart(values: list[int], width: int, height: int) -> list[str]:
    """A bar chart of `values` (resampled to `width` columns), `height` rows, top row first."""
    if not values or width < 1 or height < 1:
        return []
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int(i * step))] for i in range(width)]
    low, high = min(values), max(values)
    span = max(high - low, 1)
    levels = [(v - low) * (height * 8 - 1) // span + 1 for v in values]  # eighths of a row
    lines = []
    for row in range(height, 0, -1):
        base = (row - 1) * 8
        line = []
        for level in levels:
            fill = level - base
            line.append("█" if fill >= 8 else (SPARK[fill - 1] if fill > 0 else " "))
        lines.append("".join(line))
    return lines


# --- edits ---------------------------------------------------------------------------------


async def set_creator_status(db: Database, creator_id: int, target: CreatorStatus) -> None:
    """Pause or resume one creator's tracking."""
    async with db.transaction() as session:
        await creators.set_status(session, [creator_id], target, actor=await acting(session))


async def requeue_letters(
    db: Database, redis: ArqRedis, settings: Settings, ids: list[int] | None
) -> int:
    """Requeue these dead letters (None: every pending one); how many were requeued."""
    return await dead_letter_ops.requeue(db, redis, settings, ids, actor=await acting_now(db))


async def drop_letters(db: Database, ids: list[int] | None) -> int:
    """Drop these dead letters (None: all of them); how many were dropped."""
    return await dead_letter_ops.drop(db, ids, actor=await acting_now(db))
