"""The Regions table's rows as columns: every region in a dozen flat objects, none per region.

Shape of a snapshot (`RegionColumns`) of n regions sharing k distinct (cron, timezone) pairs:
- codes: one str, the codes joined by newlines, and `code_ends` (array of where each ends);
- names: one str, the names back to back, and `name_ends`;
- `schedule_ids`: an array of indexes into `schedules` (k entries: cron, timezone, why it is
  invalid if it is, its next fires), `active`: bytes of 0/1, `versions`: an array;
- `last_runs`: the latest run of the regions a load read (those on and near the screen).

Why: a frozen dataclass per region cost ~330 bytes with its strings (~45 MB at 100,000 regions,
more at the peak of a read) and 100,000 container objects that every full garbage collection
walked, a 30+ ms stall of the UI loop whenever one ran. Columns cost ~4 MB at 100,000 regions
and give the collector nothing to walk (str, bytes and arrays hold no references).

Invariants:
- A snapshot never changes; a refresh that changes anything makes a new one (sharing the
  columns when only the last runs or the next fires changed), so the screen can tell "nothing
  changed" by identity and the table never shows half of one and half of another.
- Position i is the same region in every column (one aggregate made them all, see
  storage.queries.regions.region_columns); codes are unique, so `index_of` is exact.
- A `RegionRow` is made only when asked for (`self[i]`): the rows painted (a terminal's height)
  and the selected one.

Costs: `self[i]` two slices and a dataclass (~2 us); `index_of` a substring search of the codes
(~0.3 ms at 100,000); `matching` a substring search of the lowered codes and names plus the
schedules (~5-20 ms at 100,000: run it off the UI loop).
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import compress
from typing import Any, overload

from console.data.common import NextRunCache, RegionRow, checked_schedule
from storage.queries.runs import LastRun
from storage.schedule import Schedule


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    cron: str
    timezone: str
    invalid: str | None  # why it cannot be used, when it cannot
    fires: tuple[datetime, ...]  # the next fires (none when invalid)


def schedule_entries(
    crons: Sequence[str], timezones: Sequence[str], now: datetime, cache: NextRunCache
) -> tuple[ScheduleEntry, ...]:
    entries = []
    for cron, timezone in zip(crons, timezones, strict=True):
        checked = checked_schedule(cron, timezone)
        if isinstance(checked, Schedule):
            entries.append(ScheduleEntry(cron, timezone, None, cache.next_runs(checked, now)))
        else:
            entries.append(ScheduleEntry(cron, timezone, checked, ()))
    return tuple(entries)


def _int4s(packed: bytes | None) -> array[int]:
    """An array of the big-endian int4s packed in these bytes (PostgreSQL's int4send)."""
    numbers = array("i", packed or b"")
    if sys.byteorder == "little":
        numbers.byteswap()
    return numbers


# Compared by identity ("nothing changed"); never printed whole (Textual names a worker after
# the repr of its arguments: a generated repr of 100,000 regions took ~30 ms on the UI loop).
@dataclass(frozen=True, slots=True, eq=False, repr=False)
class RegionColumns(Sequence[RegionRow]):
    codes: str = ""
    code_ends: array[int] = field(default_factory=lambda: array("i"))
    names: str = ""
    name_ends: array[int] = field(default_factory=lambda: array("i"))
    schedule_ids: array[int] = field(default_factory=lambda: array("i"))
    active: bytes = b""
    versions: array[int] = field(default_factory=lambda: array("i"))
    schedules: tuple[ScheduleEntry, ...] = ()
    # The latest run of the regions read (None: read, never ran); the others' is unknown.
    last_runs: Mapping[str, LastRun | None] = field(default_factory=dict)

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], now: datetime, cache: NextRunCache
    ) -> RegionColumns:
        """From storage.queries.regions.region_columns' record (no region: every column empty)."""
        if not record["count"]:
            return cls()
        return cls(
            codes=record["codes"],
            code_ends=_int4s(record["code_ends"]),
            names=record["names"],
            name_ends=_int4s(record["name_ends"]),
            schedule_ids=_int4s(record["schedule_ids"]),
            active=record["active"],
            versions=_int4s(record["versions"]),
            schedules=schedule_entries(record["crons"], record["timezones"], now, cache),
        )

    def __repr__(self) -> str:
        return f"<RegionColumns: {len(self)} regions>"

    # --- one region ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.code_ends)

    @overload
    def __getitem__(self, index: int) -> RegionRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RegionRow]: ...
    def __getitem__(self, index: int | slice) -> RegionRow | Sequence[RegionRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        code = self.code(index)
        schedule = self.schedules[self.schedule_ids[index]]
        active = bool(self.active[index])
        last = self.last_runs.get(code)
        return RegionRow(
            code=code,
            name=self.name(index),
            cron=schedule.cron,
            timezone=schedule.timezone,
            active=active,
            next_runs=schedule.fires,
            invalid=schedule.invalid,
            last_status=last.status if last else None,
            last_lag_ms=last.lag_ms if last else None,
            last_scheduled=last.scheduled_for if last else None,
            version=self.versions[index],
            last_known=code in self.last_runs,
        )

    def __iter__(self) -> Iterator[RegionRow]:
        return (self[i] for i in range(len(self)))

    def code(self, index: int) -> str:
        start = self.code_ends[index - 1] + 1 if index else 0
        return self.codes[start : self.code_ends[index]]

    def name(self, index: int) -> str:
        start = self.name_ends[index - 1] if index else 0
        return self.names[start : self.name_ends[index]]

    def index_of(self, code: object) -> int | None:
        """Where the region `code` is, or None (one search of the codes, no index kept)."""
        if not isinstance(code, str) or not code or "\n" in code:
            return None
        at = ("\n" + self.codes + "\n").find(f"\n{code}\n")
        return None if at < 0 else bisect_right(self.code_ends, at)

    # --- all of them ------------------------------------------------------------------------

    @property
    def active_count(self) -> int:
        return self.active.count(1)

    @property
    def invalid_count(self) -> int:
        invalid = [n for n, entry in enumerate(self.schedules) if entry.invalid is not None]
        if not invalid:
            return 0
        counts = Counter(self.schedule_ids)
        return sum(counts[n] for n in invalid)

    def valid_until(self) -> datetime | None:
        """The first next fire of any schedule: the rows' next runs hold until then."""
        return min((entry.fires[0] for entry in self.schedules if entry.fires), default=None)

    def with_fires(self, now: datetime, cache: NextRunCache) -> RegionColumns:
        crons = [entry.cron for entry in self.schedules]
        timezones = [entry.timezone for entry in self.schedules]
        return replace(self, schedules=schedule_entries(crons, timezones, now, cache))

    def with_last_runs(self, last_runs: Mapping[str, LastRun | None]) -> RegionColumns:
        return replace(self, last_runs=last_runs)

    def codes_between(self, start: int, stop: int) -> list[str]:
        return [self.code(i) for i in range(max(0, start), min(stop, len(self)))]

    def first_fires(self, limit: int) -> list[tuple[datetime, str]]:
        """The `limit` earliest (next fire, code) of the active regions, by time then code: a
        pass over the regions of the schedules that fire first only (~10 ms at 100,000)."""
        if limit <= 0:
            return []
        by_fire = sorted(
            (entry.fires[0], n) for n, entry in enumerate(self.schedules) if entry.fires
        )
        per_schedule = Counter(
            sid for sid, on in zip(self.schedule_ids, self.active, strict=True) if on
        )
        chosen: dict[int, datetime] = {}
        enough = 0
        for fire, n in by_fire:  # the schedules that hold the first `limit` fires, ties too
            if enough >= limit and fire > max(chosen.values()):
                break
            if per_schedule[n]:
                chosen[n] = fire
                enough += per_schedule[n]
        found = [
            (chosen[sid], self.code(index))
            for index, sid in enumerate(self.schedule_ids)
            if sid in chosen and self.active[index]
        ]
        return sorted(found)[:limit]

    def matching(self, needle: str) -> array[int]:
        """Positions of the regions whose code, name, cron or timezone holds `needle` (any
        case), in order."""
        text = needle.lower()
        hits = bytearray(len(self))
        if text and "\n" not in text:
            _mark(hits, self.codes.lower(), self.codes, self.code_ends, text)
            _mark(hits, self.names.lower(), self.names, self.name_ends, text)
            hit_schedules = {
                n
                for n, entry in enumerate(self.schedules)
                if text in entry.cron.lower() or text in entry.timezone.lower()
            }
            if hit_schedules:
                for index, schedule_id in enumerate(self.schedule_ids):
                    if schedule_id in hit_schedules:
                        hits[index] = 1
        return array("q", compress(range(len(self)), hits))


def _mark(hits: bytearray, lowered: str, original: str, ends: array[int], text: str) -> None:
    """Set hits[i] for every string i (laid out by `ends` in `original`) holding `text`."""
    if len(lowered) != len(original):
        # A character whose lower case is longer (İ): the offsets no longer line up.
        starts = [0, *ends[:-1]]
        for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
            if text in original[start:end].lower():
                hits[i] = 1
        return
    at = lowered.find(text)
    while at >= 0:
        index = bisect_right(ends, at)
        if index >= len(ends):
            return
        if at + len(text) <= ends[index]:  # within one string, not across two
            hits[index] = 1
            at = lowered.find(text, ends[index])
        else:
            at = lowered.find(text, at + 1)


class RegionSelection(Sequence[RegionRow]):
    """The regions at these positions of a snapshot (a filter's matches), in order."""

    def __init__(self, columns: RegionColumns, positions: array[int]) -> None:
        self.columns, self.positions = columns, positions

    def __repr__(self) -> str:
        return f"<RegionSelection: {len(self)} of {len(self.columns)} regions>"

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, index: int) -> RegionRow: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RegionRow]: ...
    def __getitem__(self, index: int | slice) -> RegionRow | Sequence[RegionRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.columns[self.positions[index]]

    def __iter__(self) -> Iterator[RegionRow]:
        return (self.columns[position] for position in self.positions)

    def code(self, index: int) -> str:
        return self.columns.code(self.positions[index])

    def codes_between(self, start: int, stop: int) -> list[str]:
        stop = min(stop, len(self))
        return [self.code(i) for i in range(max(0, start), stop)]

    def index_of(self, code: object) -> int | None:
        position = self.columns.index_of(code)
        if position is None:
            return None
        index = bisect_right(self.positions, position) - 1
        return index if index >= 0 and self.positions[index] == position else None


def select(columns: RegionColumns, needle: str) -> RegionColumns | RegionSelection:
    """What the table shows for this filter: the snapshot itself when there is none."""
    return RegionSelection(columns, columns.matching(needle)) if needle else columns
