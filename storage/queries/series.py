"""Downsampled follower series: hourly and daily closing stats per creator.

`downsample` rewrites the buckets of samples observed since a time (the bucket's last sample
wins), writing only rows that changed; partition maintenance runs it every hour over the last
`LOOK_BACK` (late fetches land there) and records `done_until`. `follower_series` answers a
chart from the smallest table that can: raw samples for spans up to `RAW_SPAN`, hourly buckets
up to `HOURLY_SPAN`, daily beyond; buckets from `done_until` on are read raw, so a chart is
never stale. One creator's year is ~365 daily rows on one primary-key range: well under a
millisecond of I/O, whatever the number of creators.

The daily series is kept for ever (it outlives SAMPLE_RETENTION_DAYS); hourly rows older than
`HOURLY_KEEP` are pruned. Functions never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Resolution = Literal["hour", "day"]
RESOLUTIONS: tuple[Resolution, ...] = ("hour", "day")
LOOK_BACK = timedelta(days=2)
RAW_SPAN = timedelta(days=2)
HOURLY_SPAN = timedelta(days=35)
HOURLY_KEEP = timedelta(days=40)

_DOWNSAMPLE_SQL = """
WITH fresh AS (
    SELECT DISTINCT ON (creator_id, bucket)
           creator_id, bucket, followers, following, posts, views
    FROM (
        SELECT creator_id, observed_at, followers, following, posts, views,
               date_trunc(CAST(:res AS text), observed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                   AS bucket
        FROM follower_sample
        WHERE observed_at >= :since AND observed_at < :until
    ) s
    ORDER BY creator_id, bucket, observed_at DESC
), up AS (
    INSERT INTO follower_series AS r
        (creator_id, resolution, bucket, followers, following, posts, views)
    SELECT creator_id, :res, bucket, followers, following, posts, views FROM fresh
    ON CONFLICT (creator_id, resolution, bucket) DO UPDATE
        SET followers = EXCLUDED.followers, following = EXCLUDED.following,
            posts = EXCLUDED.posts, views = EXCLUDED.views
        WHERE (r.followers, r.following, r.posts, r.views) IS DISTINCT FROM
              (EXCLUDED.followers, EXCLUDED.following, EXCLUDED.posts, EXCLUDED.views)
    RETURNING 1
)
SELECT count(*) FROM up
"""


def bucket_start(resolution: Resolution, at: datetime) -> datetime:
    if resolution == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


async def downsample(
    session: AsyncSession, resolution: Resolution, since: datetime, until: datetime | None = None
) -> int:
    """Rewrite every bucket from the one holding `since` to the one before `until` (a bucket
    boundary; None: all). Returns rows that changed."""
    start = bucket_start(resolution, since)
    end = until or datetime(9999, 1, 1, tzinfo=UTC)
    result = await session.execute(
        text(_DOWNSAMPLE_SQL), {"res": resolution, "since": start, "until": end}
    )
    return int(result.scalar_one())


async def done_until(session: AsyncSession, resolution: Resolution) -> datetime | None:
    value = await session.scalar(
        text("SELECT done_until FROM downsample_state WHERE resolution = :res"),
        {"res": resolution},
    )
    return value if isinstance(value, datetime) else None


async def set_done_until(session: AsyncSession, resolution: Resolution, at: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO downsample_state (resolution, done_until) VALUES (:res, :at) "
            "ON CONFLICT (resolution) DO UPDATE SET done_until = EXCLUDED.done_until"
        ),
        {"res": resolution, "at": at},
    )


async def prune_hourly(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        text("DELETE FROM follower_series WHERE resolution = 'hour' AND bucket < :before"),
        {"before": before},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    followers: int | None


def resolution_for(span: timedelta) -> Resolution | None:
    """The coarsest table a chart over `span` needs (None: raw samples)."""
    if span <= RAW_SPAN:
        return None
    return "hour" if span <= HOURLY_SPAN else "day"


async def follower_series(
    session: AsyncSession, creator_id: int, since: datetime, now: datetime
) -> tuple[Resolution | None, list[Point]]:
    """A creator's followers from `since` to `now`, oldest first, at the chart's resolution:
    buckets up to where downsampling is done, raw samples after. The resolution returned is
    the one drawn: None when no bucket was there (raw samples only)."""
    resolution = resolution_for(now - since)
    raw_from = since
    points: list[Point] = []
    if resolution is not None:
        until = await done_until(session, resolution)
        if until is not None and until > since:
            rows = await session.execute(
                text(
                    "SELECT bucket, followers FROM follower_series WHERE creator_id = :id "
                    "AND resolution = :res AND bucket >= :since AND bucket < :until "
                    "ORDER BY bucket"
                ),
                {"id": creator_id, "res": resolution, "since": since, "until": until},
            )
            points = [Point(r.bucket, r.followers) for r in rows]
            raw_from = until
    rows = await session.execute(
        text(
            "SELECT observed_at, followers FROM follower_sample WHERE creator_id = :id "
            "AND observed_at >= :since AND observed_at <= :now ORDER BY observed_at"
        ),
        {"id": creator_id, "since": raw_from, "now": now},
    )
    used = resolution if points else None
    points.extend(Point(r.observed_at, r.followers) for r in rows)
    return used, points
