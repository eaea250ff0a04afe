"""The Regions screen's read model: every region, and the latest run of those on screen.

A refresh (every 2 s) costs, at 10,000 regions:
- the region table's fingerprint (storage.queries.regions.regions_fingerprint: one aggregate,
  ~2 ms); only when it changed since the last read, or FULL_READ_S passed, the regions
  themselves (one raw asyncpg read, ~10 ms; ~100 ms at 100,000);
- the latest run of only the regions on and around the screen (`window`: ~100 index probes,
  ~3 ms), never the whole ledger (a DISTINCT ON over it took ~150 ms);
- rows rebuilt in a worker thread only for regions whose columns changed; when nothing did
  (no region written, no run read changed, no next run passed) the very same list comes back
  and the screen skips its redraw.

Memory: one RegionRow per region (~200 bytes, its strings shared with the others where they
repeat: cron and timezone strings are interned); the asyncpg records of a read are dropped
once the rows are built.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from console.data import NextRunCache, RegionRow, checked_schedule, search_text
from storage.database import Database
from storage.queries import runs as run_queries
from storage.queries.regions import list_region_summaries, regions_fingerprint
from storage.queries.runs import LastRun
from storage.schedule import Schedule

# Read the regions in full at least this often, fingerprint or not (it misses writes that
# bypass the ORM's updated_at).
FULL_READ_S = 30.0
FIRST_WINDOW = 96  # rows whose latest run the first load reads (before anything is on screen)


class RegionTable:
    """Builds the rows, reusing the row object of every region whose columns did not change.

    `last_runs` accumulates the latest run of the regions read so far; a refresh reads only the
    regions near the screen, so a region scrolled away keeps the value it had when it was last
    on screen until it comes back (the screen then reads it again at once).
    """

    def __init__(self, cache: NextRunCache | None = None) -> None:
        self.next_runs = cache or NextRunCache()
        self.last_runs: dict[str, LastRun] = {}
        self._rows: dict[str, RegionRow] = {}
        self._built: list[RegionRow] = []  # the last build, in table order
        self._valid_until: datetime | None = None  # the first next run among them
        self._last_runs_changed = True
        self._fingerprint: tuple[int, Decimal] | None = None
        self._read_at = 0.0  # time.monotonic() of the last full read

    def unchanged_since_read(self, fingerprint: tuple[int, Decimal]) -> bool:
        """Whether the regions read last are still the table's (so need no new read)."""
        return fingerprint == self._fingerprint and time.monotonic() - self._read_at < FULL_READ_S

    def note_read(self, fingerprint: tuple[int, Decimal]) -> None:
        self._fingerprint, self._read_at = fingerprint, time.monotonic()

    def update_last_runs(self, window: Iterable[str], found: dict[str, LastRun]) -> None:
        for code in window:
            last = found.get(code)
            if last is None:
                if self.last_runs.pop(code, None) is not None:
                    self._last_runs_changed = True
            elif self.last_runs.get(code) != last:
                self.last_runs[code] = last
                self._last_runs_changed = True

    def build(
        self,
        regions: Iterable[Iterable[Any]] | None,  # (code, name, cron, timezone, active)
        now: datetime,
    ) -> list[RegionRow]:
        """The rows of these regions (None: the regions of the last build, unchanged). The very
        list of the last build when nothing changed: same regions, same latest runs, no next
        run passed."""
        if (
            regions is None
            and not self._last_runs_changed
            and self._valid_until is not None
            and now < self._valid_until
        ):
            return self._built
        if regions is None:
            regions = ((r.code, r.name, r.cron, r.timezone, r.active) for r in self._built)
        known, previous = self.last_runs, self._rows
        valid_until: datetime | None = None
        rows: list[RegionRow] = []
        built: dict[str, RegionRow] = {}
        intern = sys.intern
        for code, name, cron, timezone, active in regions:
            checked = checked_schedule(cron, timezone)
            fires = self.next_runs.next_runs(checked, now) if isinstance(checked, Schedule) else ()
            if fires and (valid_until is None or fires[0] < valid_until):
                valid_until = fires[0]
            last = known.get(code)
            old = previous.get(code)
            if (
                old is not None
                and old.next_runs is fires
                and old.active == active
                and old.name == name
                and old.cron == cron
                and old.timezone == timezone
                and old.last_status == (last.status if last else None)
                and old.last_lag_ms == (last.lag_ms if last else None)
                and old.last_scheduled == (last.scheduled_for if last else None)
            ):
                row = old
            else:
                row = RegionRow(
                    code=code,
                    name=name,
                    cron=intern(cron),  # 10,000 regions share a few hundred schedules
                    timezone=intern(timezone),
                    active=active,
                    next_runs=fires,
                    invalid=checked if isinstance(checked, str) else None,
                    last_status=last.status if last else None,
                    last_lag_ms=last.lag_ms if last else None,
                    last_scheduled=last.scheduled_for if last else None,
                    search=search_text(code, name, cron, timezone),
                )
            rows.append(row)
            built[code] = row
        self._rows, self._built = built, rows
        self._valid_until = valid_until or datetime.max.replace(tzinfo=now.tzinfo)
        self._last_runs_changed = False
        return rows


@dataclass(frozen=True, slots=True)
class RegionsLoad:
    rows: list[RegionRow]
    window: frozenset[str]  # the regions whose latest run this load read


async def load_region_window(
    db: Database,
    now: datetime,
    table: RegionTable,
    window: Callable[[], list[str] | None],
) -> RegionsLoad:
    """Every region, and the latest run of only the regions `window()` names (those on and
    near the screen; None before anything is on screen: the first FIRST_WINDOW regions)."""
    async with db.session() as session:
        # The fingerprint first: a region written meanwhile changes it again, so at worst the
        # next refresh reads once more (never a stale table).
        fingerprint = await regions_fingerprint(session)
        fresh = not table.unchanged_since_read(fingerprint)
        regions = await list_region_summaries(session) if fresh else None
        codes = window()
        if codes is None:
            codes = [region[0] for region in (regions or [])[:FIRST_WINDOW]]
        found = await run_queries.last_runs_of(session, codes)
    table.update_last_runs(codes, found)
    rows = await asyncio.to_thread(table.build, regions, now)
    if fresh:
        table.note_read(fingerprint)  # only once built: the rows hold these regions now
    return RegionsLoad(rows, frozenset(codes))
