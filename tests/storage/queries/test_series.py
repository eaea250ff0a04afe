"""Downsampled follower series: the bucket's last sample, written once; charts read the
smallest table that answers them, stay fresh past the last downsampling, and outlive the raw
samples' retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from engine.jobs.maintenance import downsample, maintain
from storage.database import Database, plain_dsn
from storage.queries import series
from storage.settings import Settings


def _now() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, 12, 30, tzinfo=UTC)


@pytest.fixture
async def creator(test_settings: Settings) -> int:
    conn = await asyncpg.connect(plain_dsn(test_settings.database_url or ""))
    try:
        creator_id = await conn.fetchval(
            "INSERT INTO creator (platform, external_id, handle) VALUES ('mock', 's1', 's1') "
            "RETURNING id"
        )
        # Twice a day for 400 days (06:00 and 18:00), followers = hours since the first sample;
        # and every 10 minutes over the last 3 hours.
        now = _now()
        await conn.execute(
            "INSERT INTO follower_sample (creator_id, observed_at, followers) "
            "SELECT $1, t, (extract(epoch FROM t - $2::timestamptz) / 3600)::bigint "
            "FROM generate_series($2::timestamptz, $3::timestamptz, interval '12 hours') t",
            creator_id,
            datetime(now.year, now.month, now.day, 6, tzinfo=UTC) - timedelta(days=400),
            now - timedelta(hours=7),
        )
        await conn.execute(
            "INSERT INTO follower_sample (creator_id, observed_at, followers) "
            "SELECT $1, t, 100000 + (extract(epoch FROM $2::timestamptz - t) / 60)::bigint "
            "FROM generate_series($2::timestamptz - interval '3 hours', $2::timestamptz, "
            "interval '10 minutes') t ON CONFLICT DO NOTHING",
            creator_id,
            now,
        )
        return int(creator_id)
    finally:
        await conn.close()


async def test_daily_buckets_hold_the_days_last_sample_and_rerun_writes_nothing(
    db: Database, creator: int
) -> None:
    now = _now()
    first = await downsample(db, now)
    # Daily from the first sample; hourly only as far back as hourly buckets are kept (40 d).
    assert first["day"] > 400 and 75 < first["hour"] < 90
    again = await downsample(db, now)
    assert again == {"hour": 0, "day": 0}
    async with db.session() as session:
        resolution, points = await series.follower_series(
            session, creator, now - timedelta(days=365), now
        )
    assert resolution == "day"
    # One point a day (the 18:00 sample closes each day) then today's raw samples.
    daily = [p for p in points if p.at < series.bucket_start("day", now)]
    assert len(daily) == 364  # whole days after `since`, up to yesterday
    assert all(p.at.hour == 0 for p in daily)
    assert daily[-1].followers is not None and (daily[-1].followers - 12) % 24 == 0
    raw = [p for p in points if p.at >= series.bucket_start("day", now)]
    assert raw and raw[-1].at == now  # fresh: the samples after the last downsampling


async def test_span_picks_the_table(db: Database, creator: int) -> None:
    now = _now()
    await downsample(db, now)
    async with db.session() as session:
        month = await series.follower_series(session, creator, now - timedelta(days=30), now)
        day = await series.follower_series(session, creator, now - timedelta(hours=20), now)
    assert month[0] == "hour" and 55 <= len(month[1]) <= 80
    assert day[0] is None and [p.at for p in day[1]] == sorted(p.at for p in day[1])


async def test_before_downsampling_the_series_says_it_is_raw(db: Database, creator: int) -> None:
    now = _now()
    async with db.session() as session:
        month = await series.follower_series(session, creator, now - timedelta(days=30), now)
    assert month[0] is None and len(month[1]) > 60  # the samples themselves, not hour buckets


async def test_the_daily_series_outlives_sample_retention(
    db: Database, creator: int, test_settings: Settings
) -> None:
    now = _now()
    keep_90 = test_settings.replace(retention={"sample_days": 90})
    await maintain(db, keep_90, now)
    async with db.session() as session:
        _, points = await series.follower_series(session, creator, now - timedelta(days=365), now)
        oldest_raw = await session.scalar(text("SELECT min(observed_at) FROM follower_sample"))
    assert oldest_raw is not None and oldest_raw > now - timedelta(days=130)
    assert len([p for p in points if p.at < now - timedelta(days=130)]) > 200
