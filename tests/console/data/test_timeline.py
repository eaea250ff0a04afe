"""The Timeline's read model: fire times per hour and per minute, creators due, the offset
rewrite and its refusals; and its cost at 10,000 regions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from console.data.timeline import (
    HOURS,
    OffsetError,
    build_timeline,
    plan_offset,
    shift_minute,
)
from storage.queries.timeline import TimelineRegion

NOW = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)  # a frozen clock: between two minutes


def region(code: str, cron: str, creators: int = 0, **extra: object) -> TimelineRegion:
    return TimelineRegion(
        code,
        cron,
        str(extra.get("timezone", "UTC")),
        bool(extra.get("active", True)),
        creators,
    )


def test_fire_times_are_bucketed_per_hour_and_crowded_minutes_come_first() -> None:
    timeline = build_timeline(
        [
            region("A", "15 * * * *", creators=10),
            region("B", "15 * * * *", creators=5),
            region("C", "0 13 * * *", creators=2),
            region("D", "30 6 * * *", timezone="America/Chicago"),  # 12:30 UTC in November
            region("P", "15 * * * *", active=False),  # paused: not on the timeline
            region("T", "0 25 * * *"),  # invalid
        ],
        NOW,
    )
    assert len(timeline.per_hour) == HOURS and timeline.hour0 == NOW.replace(minute=0, second=0)
    assert timeline.per_hour[0] == 2 + 1  # 12:15 (A, B) and 12:30 (D)
    assert timeline.per_hour[1] == 2 + 1  # 13:15 and 13:00 (C)
    assert timeline.fires == 24 * 2 + 1 + 1
    assert (timeline.regions, timeline.invalid) == (4, 1)
    first = timeline.busiest[0]
    assert (first.at, first.regions, first.creators) == (
        NOW.replace(minute=15, second=0),
        ("A", "B"),
        15,
    )
    assert "P" not in timeline.schedules and timeline.schedules["A"] == ("15 * * * *", "UTC")


@pytest.mark.parametrize(
    ("cron", "offset", "moved"),
    [
        ("15 * * * *", 5, "20 * * * *"),
        ("58 3 * * 1", 5, "3 3 * * 1"),
        ("0,30 * * * *", 10, "10,40 * * * *"),
        ("*/15 * * * *", 5, "5-59/15 * * * *"),
    ],
)
def test_shift_minute_moves_the_minute_field(cron: str, offset: int, moved: str) -> None:
    assert shift_minute(cron, offset) == moved


@pytest.mark.parametrize(
    ("cron", "offset", "says"),
    [
        ("* * * * *", 5, "fires every minute"),
        ("*/15 * * * *", 30, "multiple of the step 15"),
        ("0-10 * * * *", 5, "not a list of minutes"),
        ("0,30 * * * *", 30, "leaves its minutes"),
    ],
)
def test_shift_minute_refuses_what_it_cannot_move(cron: str, offset: int, says: str) -> None:
    with pytest.raises(OffsetError, match=says):
        shift_minute(cron, offset)


def test_plan_offset_checks_the_offset_and_the_regions() -> None:
    timeline = build_timeline([region("A", "15 * * * *"), region("E", "* * * * *")], NOW)
    assert [c.cron for c in plan_offset(timeline, ["A"], 7)] == ["22 * * * *"]
    with pytest.raises(OffsetError, match="1 to 59"):
        plan_offset(timeline, ["A"], 60)
    with pytest.raises(OffsetError, match=r"E: .*every minute"):
        plan_offset(timeline, ["A", "E"], 5)
    with pytest.raises(OffsetError, match="GONE: not an active region"):
        plan_offset(timeline, ["GONE"], 5)


def test_ten_thousand_regions_cost_the_distinct_schedules_not_the_regions() -> None:
    regions = [
        region(f"R{i:05d}", f"{i % 60} {'*' if i % 2 else '*/3'} * * *", creators=3)
        for i in range(10_000)
    ]
    started = time.perf_counter()
    timeline = build_timeline(regions, NOW)
    took = time.perf_counter() - started
    assert timeline.regions == 10_000
    assert timeline.fires == 5_000 * 24 + 5_000 * 8
    assert len(timeline.busiest[0].regions) == 167  # minutes 0-39 have 167 regions each
    assert timeline.busiest[0].creators == 167 * 3
    print(f"build_timeline: 10,000 regions, 120 schedules: {took * 1000:.0f} ms")
    assert took < 10  # generous: a loaded machine; it runs in a thread either way
