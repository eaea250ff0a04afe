"""Validated, timezone-aware input for posts and schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from storage.database import Database
from storage.models import Platform
from storage.queries import publishing
from storage.queries.publishing import PublishingError, parse_local_time
from tests.support.publishing import add_connection


def test_local_time_in_a_timezone_becomes_utc() -> None:
    assert parse_local_time("2026-07-01 09:30", "Europe/Paris") == datetime(
        2026, 7, 1, 7, 30, tzinfo=UTC
    )
    assert parse_local_time("2026-12-01T09:30", "America/Detroit") == datetime(
        2026, 12, 1, 14, 30, tzinfo=UTC
    )
    # An explicit offset wins over the timezone.
    assert parse_local_time("2026-12-01 09:30+00:00", "Asia/Tokyo") == datetime(
        2026, 12, 1, 9, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "tz", "message"),
    [
        ("tomorrow", "UTC", "write YYYY-MM-DD HH:MM"),
        ("2026-07-01 09:30", "Mars/Olympus", "unknown timezone"),
        ("2026-07-01 09:30", "Europe", "unknown timezone"),  # a folder of the tz database
        ("2026-07-01 09:30", "", "unknown timezone"),
        ("2026-03-08 02:30", "America/Detroit", "does not exist"),  # spring-forward gap
    ],
)
def test_bad_times_are_refused_precisely(text: str, tz: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_local_time(text, tz)


def test_post_input_rules() -> None:
    with pytest.raises(ValidationError, match="the post is empty"):
        publishing.PostInput(body="   ", connection_ids=[1])
    with pytest.raises(ValidationError, match="at least 1"):
        publishing.PostInput(body="hi", connection_ids=[])
    with pytest.raises(ValidationError, match="unknown timezone"):
        publishing.PostInput(body="hi", connection_ids=[1], timezone="Nowhere/Land")


async def test_schedule_in_the_past_and_too_long_for_x_are_refused(db: Database) -> None:
    x = await add_connection(db, "1234", platform=Platform.X)
    async with db.transaction() as session:
        with pytest.raises(PublishingError, match="x \\(@1234\\) takes at most 280"):
            await publishing.create_post(
                session, publishing.PostInput(body="a" * 281, connection_ids=[x.id]), actor="t"
            )
    async with db.transaction() as session:
        post, _ = await publishing.create_post(
            session, publishing.PostInput(body="draft", connection_ids=[x.id]), actor="t"
        )
    async with db.transaction() as session:
        with pytest.raises(PublishingError, match="in the past"):
            await publishing.schedule_post(
                session, post.id, datetime.now(UTC) - timedelta(hours=1), "UTC", "t"
            )
    async with db.transaction() as session:
        with pytest.raises(PublishingError, match="no such connection"):
            await publishing.create_post(
                session, publishing.PostInput(body="hi", connection_ids=[999]), actor="t"
            )
