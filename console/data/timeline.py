"""The Timeline's read model: the next 24 hours of fire times of every region, per hour and
per minute, and the offset edit that spreads a crowded minute.

`build_timeline` is pure: regions are grouped by (cron, timezone) and each distinct schedule's
fire times are computed once (croniter, in its timezone: storage.schedule), so the cost is
(distinct schedules x their fire times in 24 h) croniter steps (~30 us each) plus one dict
update per (schedule, fire time), not per region: 10,000 regions on 100 hourly schedules is
~2,400 steps. It runs in a thread (`load_timeline`), as console.data.common does for rows.

The offset edit rewrites the minute field of each chosen region's cron (`shift_minute`) and
writes it through console.data.regions.set_schedule: validated and audited like any schedule
edit, one transaction per region (a refusal of one leaves the others as written).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from console.data import regions as region_data
from console.data.acting import Identity
from storage.database import Database
from storage.queries.timeline import TimelineRegion, timeline_regions
from storage.schedule import ScheduleError, parse_schedule
from storage.user_error import UserError

WINDOW = timedelta(hours=24)
HOURS = 25  # the current hour, partly past, and the next 24
BUSIEST = 40  # minutes listed
MAX_OFFSET_REGIONS = 500  # one offset edit writes at most this many regions


class OffsetError(ValueError, UserError):
    """An offset that cannot be applied, with the reason."""

    title = "offset refused"


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of the window and what fires in it."""

    at: datetime
    regions: tuple[str, ...]  # codes, sorted
    creators: int  # active creators of those regions: due at that minute


@dataclass(frozen=True, slots=True)
class Timeline:
    start: datetime  # the window is (start, start + 24 h]
    hour0: datetime  # the first bucket's hour
    per_hour: tuple[int, ...]  # region fire times per hour bucket (HOURS of them)
    creators_per_hour: tuple[int, ...]
    busiest: tuple[Minute, ...]  # the most crowded minutes, most regions first
    regions: int  # active regions with a valid cron
    invalid: int  # active regions whose cron cannot be used
    schedules: dict[str, tuple[str, str]]  # code -> (cron, timezone), for the offset edit

    @property
    def fires(self) -> int:
        return sum(self.per_hour)


def build_timeline(
    regions: Sequence[TimelineRegion], now: datetime, busiest: int = BUSIEST
) -> Timeline:
    start = now.replace(second=0, microsecond=0)
    end = start + WINDOW
    hour0 = start.replace(minute=0)
    groups: dict[tuple[str, str], list[TimelineRegion]] = defaultdict(list)
    invalid = 0
    for region in regions:
        if region.active:
            groups[(region.cron, region.timezone)].append(region)
    per_hour = [0] * HOURS
    creators_per_hour = [0] * HOURS
    per_minute: dict[datetime, list[tuple[str, str]]] = defaultdict(list)
    counts: Counter[datetime] = Counter()
    for key, members in groups.items():
        try:
            schedule = parse_schedule(*key)
        except ScheduleError:
            invalid += len(members)
            continue
        creators = sum(m.creators for m in members)
        for fire in schedule.fire_times_after(start):
            if fire > end:
                break
            bucket = int((fire - hour0) // timedelta(hours=1))
            per_hour[bucket] += len(members)
            creators_per_hour[bucket] += creators
            per_minute[fire].append(key)
            counts[fire] += len(members)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:busiest]
    minutes = tuple(_minute(at, per_minute[at], groups) for at, _ in top)
    valid = sum(len(groups[key]) for key in groups) - invalid
    return Timeline(
        start=start,
        hour0=hour0,
        per_hour=tuple(per_hour),
        creators_per_hour=tuple(creators_per_hour),
        busiest=minutes,
        regions=valid,
        invalid=invalid,
        schedules={region.code: key for key, members in groups.items() for region in members},
    )


def _minute(
    at: datetime,
    keys: list[tuple[str, str]],
    groups: dict[tuple[str, str], list[TimelineRegion]],
) -> Minute:
    members = [region for key in keys for region in groups[key]]
    codes = tuple(sorted(region.code for region in members))
    return Minute(at, codes, sum(region.creators for region in members))


async def load_timeline(db: Database, now: datetime) -> Timeline:
    async with db.session() as session:
        regions = await timeline_regions(session)
    return await asyncio.to_thread(build_timeline, regions, now)


# --- the offset edit ------------------------------------------------------------------------


def shift_minute(cron: str, offset: int) -> str:
    """`cron` with its minute field moved by `offset` minutes (within the hour: 58 + 5 is 3).

    A list of minutes moves each one; `*/k` becomes `s-59/k` (s = offset mod k). Anything else
    (`*`, ranges) is refused: it says which field and why."""
    fields = cron.split()
    if len(fields) != 5:
        raise OffsetError(f"cron {cron!r} does not have 5 fields")
    minute = fields[0]
    if minute == "*":
        raise OffsetError(f"{cron!r} fires every minute: an offset cannot move it")
    if minute.startswith("*/") and minute[2:].isdigit():
        step = int(minute[2:])
        shift = offset % step
        if shift == 0:
            raise OffsetError(f"{cron!r}: an offset of {offset} is a multiple of the step {step}")
        fields[0] = f"{shift}-59/{step}"
        return " ".join(fields)
    parts = minute.split(",")
    if not all(part.isdigit() for part in parts):
        raise OffsetError(
            f"{cron!r}: the minute field {minute!r} is not a list of minutes or */step"
        )
    moved = sorted({(int(part) + offset) % 60 for part in parts})
    if moved == sorted({int(part) for part in parts}):
        raise OffsetError(f"{cron!r}: an offset of {offset} leaves its minutes as they are")
    fields[0] = ",".join(str(m) for m in moved)
    return " ".join(fields)


@dataclass(frozen=True, slots=True)
class OffsetChange:
    code: str
    cron: str  # the new cron
    timezone: str


def plan_offset(timeline: Timeline, codes: Sequence[str], offset: int) -> list[OffsetChange]:
    """The new crons of `codes`; OffsetError saying which region is refused and why."""
    if not 1 <= offset <= 59:
        raise OffsetError(f"offset must be 1 to 59 minutes, not {offset}")
    if not codes:
        raise OffsetError("no region chosen")
    if len(codes) > MAX_OFFSET_REGIONS:
        raise OffsetError(f"at most {MAX_OFFSET_REGIONS} regions per offset, not {len(codes)}")
    changes = []
    for code in codes:
        if code not in timeline.schedules:
            raise OffsetError(f"{code}: not an active region of the timeline")
        cron, timezone = timeline.schedules[code]
        try:
            changes.append(OffsetChange(code, shift_minute(cron, offset), timezone))
        except OffsetError as exc:
            raise OffsetError(f"{code}: {exc}") from exc
    return changes


async def apply_offset(
    db: Database, changes: Sequence[OffsetChange], *, actor: Identity, now: datetime
) -> int:
    """Write each change through the region edit path (validated, audited); returns how many."""
    for change in changes:
        await region_data.set_schedule(
            db, change.code, change.cron, change.timezone, actor=actor, now=now
        )
    return len(changes)
