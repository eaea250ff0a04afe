"""Cron schedules: validation with a message a person can act on, and fire times in a timezone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


class ScheduleError(ValueError):
    """A cron string or timezone that cannot be used, with the reason."""


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

    def fires_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """Fire times in (start, end], at most `limit` of them (the latest ones)."""
        found: list[datetime] = []
        for fire in self.fire_times_after(start):
            if fire > end:
                break
            found.append(fire)
            if len(found) > limit:
                found.pop(0)
        return found

    def is_fire_time(self, when: datetime) -> bool:
        return bool(croniter.match(self.cron, when.astimezone(self.zone)))


def validate_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown timezone {name!r} (use an IANA name like UTC or America/Detroit)"
        ) from exc
    return name


def parse_schedule(cron: str, timezone: str = "UTC") -> Schedule:
    """Check a 5-field cron string and a timezone; raise ScheduleError saying what is wrong."""
    text = " ".join(cron.split())
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise ScheduleError(
            f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    validate_timezone(timezone)
    for name, field in zip(FIELD_NAMES, fields, strict=True):
        probe = ["*"] * 5
        probe[FIELD_NAMES.index(name)] = field
        if not croniter.is_valid(" ".join(probe)):
            raise ScheduleError(f"invalid {name} field {field!r}")
    try:
        schedule = Schedule(text, timezone)
        schedule.next_fire(datetime.now(UTC))
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise ScheduleError(f"cron {text!r} never fires: {exc}") from exc
    return schedule
