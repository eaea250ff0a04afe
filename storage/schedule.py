"""Cron schedules: validation with a message a person can act on, and fire times in a timezone."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from storage.user_error import UserError

_EPSILON = timedelta(microseconds=1)
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(ValueError, UserError):
    """A cron string or timezone that cannot be used, with the reason."""

    title = "invalid schedule"


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def fire_times_after(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after `after`, as UTC datetimes, forever."""
        local = after.astimezone(self.zone)
        itr = croniter(self.cron, local)
        while True:
            yield itr.get_next(datetime).astimezone(UTC)

    def next_fire(self, after: datetime) -> datetime:
        return next(self.fire_times_after(after))

    def next_fires(self, after: datetime, count: int) -> list[datetime]:
        times = self.fire_times_after(after)
        return [next(times) for _ in range(count)]

    def is_fire_time(self, when: datetime) -> bool:
        return bool(croniter.match(self.cron, when.astimezone(self.zone)))

    def calendar(self, start: datetime, end: datetime, limit: int) -> Calendar:
        """Fire times in (start, end] (the latest `limit`) and the first one after `end`."""
        fires: list[datetime] = []
        times = self.fire_times_after(start)
        for fire in times:
            if fire > end:
                return Calendar(self, start, fires, fire)
            fires.append(fire)
            if len(fires) > limit:
                del fires[: len(fires) - limit]
                start = fires[0] - _EPSILON
        raise AssertionError("unreachable: fire_times_after never ends")


@dataclass
class Calendar:
    """One schedule's fire times over a span, computed once and shared by every region using it.

    croniter costs tens of microseconds per step; with thousands of regions on a few schedules,
    the scheduler asks each question of a calendar instead.
    """

    schedule: Schedule
    start: datetime  # every fire time in (start, next_fire] is known
    fires: list[datetime]  # ascending, all <= the span's end
    next_fire: datetime  # the first fire time after the span's end
    _members: set[datetime] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._members = set(self.fires)
        self._members.add(self.next_fire)

    def due(self, after: datetime) -> list[datetime]:
        """Fire times in (after, end]."""
        return self.fires[bisect.bisect_right(self.fires, after) :]

    def is_fire_time(self, when: datetime) -> bool:
        if self.start < when <= self.next_fire:
            return when in self._members
        return self.schedule.is_fire_time(when)


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a directory
        raise ScheduleError(
            f"unknown timezone {name!r} (use an IANA name like UTC or America/Detroit)"
        ) from exc
    return name


@lru_cache(maxsize=4096)
def parse_schedule(cron: str, timezone: str = "UTC") -> Schedule:
    """Check a 5-field cron string and a timezone; raise ScheduleError saying what is wrong.

    Cached: the scheduler parses every region's schedule on every pass.
    """
    text = " ".join(cron.split())
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise ScheduleError(
            f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    validate_timezone(timezone)
    for position, (name, value) in enumerate(zip(FIELD_NAMES, fields, strict=True)):
        probe = ["*"] * 5
        probe[position] = value
        if not croniter.is_valid(" ".join(probe)):
            raise ScheduleError(f"invalid {name} field {value!r}")
    try:
        schedule = Schedule(text, timezone)
        schedule.next_fire(datetime.now(UTC))
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise ScheduleError(f"cron {text!r} never fires: {exc}") from exc
    return schedule
