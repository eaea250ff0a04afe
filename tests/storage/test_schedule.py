from datetime import UTC, datetime

import pytest

from storage.schedule import ScheduleError, parse_schedule


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * *", "cron needs 5 fields"),
        ("* * * * * *", "got 6"),
        ("61 * * * *", "invalid minute field '61'"),
        ("0 25 * * *", "invalid hour field '25'"),
        ("0 0 32 * *", "invalid day of month field '32'"),
        ("0 0 * 13 *", "invalid month field '13'"),
        ("0 0 * * 8", "invalid day of week field '8'"),
        ("0 0 31 2 *", "never fires"),
        ("", "got 0"),
    ],
)
def test_invalid_cron_says_what_is_wrong(cron: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(cron)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "../etc/passwd", ""])
def test_unknown_timezone_is_refused(zone: str) -> None:
    with pytest.raises(ScheduleError, match="unknown timezone"):
        parse_schedule("0 3 * * *", zone)


def test_whitespace_is_normalised() -> None:
    assert parse_schedule("  0   3 * *  * ").cron == "0 3 * * *"


def test_fire_times_follow_the_region_timezone_across_dst() -> None:
    schedule = parse_schedule("0 3 * * *", "America/Detroit")
    # 2026-11-01 ends US daylight saving time: 03:00 local moves from 07:00Z to 08:00Z.
    fires = schedule.next_fires(datetime(2026, 10, 31, 12, tzinfo=UTC), 2)
    assert fires == [datetime(2026, 11, 1, 8, tzinfo=UTC), datetime(2026, 11, 2, 8, tzinfo=UTC)]
    assert all(schedule.is_fire_time(fire) for fire in fires)
    assert not schedule.is_fire_time(datetime(2026, 11, 1, 7, tzinfo=UTC))


def test_calendar_answers_like_croniter_and_keeps_the_latest_when_capped() -> None:
    schedule = parse_schedule("0 * * * *")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    calendar = schedule.calendar(start, datetime(2026, 1, 1, 10, 30, tzinfo=UTC), limit=3)
    assert [f.hour for f in calendar.fires] == [8, 9, 10]
    assert calendar.next_fire == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert [f.hour for f in calendar.due(datetime(2026, 1, 1, 9, tzinfo=UTC))] == [10]
    for minute in (0, 15):
        for hour in (2, 9, 11, 12):
            when = datetime(2026, 1, 1, hour, minute, tzinfo=UTC)
            assert calendar.is_fire_time(when) == schedule.is_fire_time(when)
