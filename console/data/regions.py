"""The Regions screen's read model: every region, and the latest run of those on screen.

A refresh (every 2 s) costs, at 10,000 regions:
- the region table's fingerprint (storage.queries.regions.regions_fingerprint: one aggregate,
  ~2 ms); only when it changed, the regions updated since the last read (less DELTA_MARGIN
  for transactions that began before it and committed after); a full read (one raw asyncpg
  read, ~10 ms; ~100 ms at 100,000) on the first load, every FULL_READ_S, and when the count
  changed or a new code appeared (an insert or a delete);
- the latest run of only the regions on and around the screen (`window`: ~100 index probes,
  ~3 ms), never the whole ledger (a DISTINCT ON over it took ~150 ms);
- rows rebuilt in a worker thread only for regions whose columns changed; when nothing did
  (no region written, no run read changed, no next run passed) the very same list comes back
  and the screen skips its redraw.

Memory: one RegionRow per region (~200 bytes, its strings shared with the others where they
repeat: cron and timezone strings are interned); the asyncpg records of a read are dropped
once the rows are built.

Edits (the Regions screen's commands, each one audited write; a refusal raises a
storage.user_error.UserError): `set_schedule`, `set_active`, `add_region`, `remove_region`,
`run_now`. Each edit of an existing region carries the version its row showed
(RegionRow.version): one made against a region someone else changed since is refused with
`RegionChanged`, which says who changed it, when, and what it is now.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from arq.connections import ArqRedis

from console.data.acting import acting, acting_now
from console.data.common import NextRunCache, RegionRow, checked_schedule, search_text
from engine.tick_queue import TickRequest, enqueue_ticks
from storage import permissions
from storage.database import Database
from storage.models import Role
from storage.queries import audit
from storage.queries import runs as run_queries
from storage.queries.operators import Identity
from storage.queries.regions import (
    RegionInput,
    create_region,
    delete_region,
    list_region_summaries,
    regions_changed_since,
    regions_fingerprint,
    transaction_now,
    update_region,
)
from storage.queries.runs import LastRun
from storage.schedule import Schedule
from storage.settings import Settings

__all__ = ["RegionInput"]  # the new-region form's type, for screens (they import no storage)

# Read the regions in full at least this often, fingerprint or not (it misses writes that
# bypass the ORM's updated_at).
FULL_READ_S = 30.0
DELTA_MARGIN = timedelta(seconds=60)
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
        self._built: list[RegionRow] = []  # the last build, in table order
        self._index: dict[str, int] = {}  # code -> position in _built
        self._valid_until: datetime | None = None  # the first next run among them
        self._last_runs_changed = True
        self._fingerprint: tuple[int, Decimal] | None = None
        self._read_at = 0.0  # time.monotonic() of the last full read
        self.read_now: datetime | None = None  # the database's now() at the last read

    def needs(self, fingerprint: tuple[int, Decimal]) -> str:
        """What to read: "nothing", "changes" (updates only) or "all"."""
        if self._fingerprint is None or time.monotonic() - self._read_at >= FULL_READ_S:
            return "all"
        if fingerprint == self._fingerprint:
            return "nothing"
        return "changes" if fingerprint[0] == self._fingerprint[0] else "all"

    def note_read(self, fingerprint: tuple[int, Decimal], read_now: datetime, full: bool) -> None:
        self._fingerprint, self.read_now = fingerprint, read_now
        if full:
            self._read_at = time.monotonic()

    def knows(self, codes: Iterable[str]) -> bool:
        return all(code in self._index for code in codes)

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
        regions: Iterable[Iterable[Any]] | None,  # (code, name, cron, timezone, active, version)
        now: datetime,
        changes: Iterable[Iterable[Any]] = (),  # updated regions, all of them known
    ) -> list[RegionRow]:
        """The rows of these regions (None: the regions of the last build with `changes`). The
        very list of the last build when nothing changed: no region, no latest run read, no
        next run passed; only the changed rows are made anew when only some changed."""
        changed = {record[0]: record for record in map(tuple, changes)}
        still_valid = self._valid_until is not None and now < self._valid_until
        if regions is None and not self._last_runs_changed and still_valid:
            if not changed:
                return self._built
            rows = list(self._built)  # a few regions edited: replace just those rows
            for code, record in changed.items():
                index = self._index[code]
                rows[index] = self._row(record, now, rows[index])  # kept if the same
            self._built = rows
            return rows
        if regions is None:
            regions = (
                changed.get(r.code) or (r.code, r.name, r.cron, r.timezone, r.active, r.version)
                for r in self._built
            )
        previous = {row.code: row for row in self._built} if self._built else {}
        self._valid_until = None
        records = (tuple(record) for record in regions)
        rows = [self._row(record, now, previous.get(record[0])) for record in records]
        self._built, self._index = rows, {row.code: n for n, row in enumerate(rows)}
        if self._valid_until is None:
            self._valid_until = datetime.max.replace(tzinfo=now.tzinfo)
        self._last_runs_changed = False
        return rows

    def _row(self, record: tuple[Any, ...], now: datetime, old: RegionRow | None) -> RegionRow:
        code, name, cron, timezone, active, version = record
        checked = checked_schedule(cron, timezone)
        fires = self.next_runs.next_runs(checked, now) if isinstance(checked, Schedule) else ()
        if fires and (self._valid_until is None or fires[0] < self._valid_until):
            self._valid_until = fires[0]
        last = self.last_runs.get(code)
        if (
            old is not None
            and old.next_runs is fires
            and old.active == active
            and old.name == name
            and old.cron == cron
            and old.timezone == timezone
            and old.version == version
            and old.last_status == (last.status if last else None)
            and old.last_lag_ms == (last.lag_ms if last else None)
            and old.last_scheduled == (last.scheduled_for if last else None)
        ):
            return old
        return RegionRow(
            code=code,
            name=name,
            cron=sys.intern(cron),  # 10,000 regions share a few hundred schedules
            timezone=sys.intern(timezone),
            active=active,
            next_runs=fires,
            invalid=checked if isinstance(checked, str) else None,
            last_status=last.status if last else None,
            last_lag_ms=last.lag_ms if last else None,
            last_scheduled=last.scheduled_for if last else None,
            search=search_text(code, name, cron, timezone),
            version=version,
        )


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
        read_now = await transaction_now(session)
        fingerprint = await regions_fingerprint(session)
        need = table.needs(fingerprint)
        regions = changes = None
        if need == "changes" and table.read_now is not None:
            changes = await regions_changed_since(session, table.read_now - DELTA_MARGIN)
            if not table.knows(record[0] for record in changes):
                need = "all"  # a new code (an insert and a delete): its place needs the order
        if need == "all":
            regions = await list_region_summaries(session)
        codes = window()
        if codes is None:
            codes = [region[0] for region in (regions or [])[:FIRST_WINDOW]]
        found = await run_queries.last_runs_of(session, codes)
    table.update_last_runs(codes, found)
    rows = await asyncio.to_thread(table.build, regions, now, changes or ())
    if need != "nothing":
        table.note_read(fingerprint, read_now, full=need == "all")  # once built
    return RegionsLoad(rows, frozenset(codes))


# --- edits ---------------------------------------------------------------------------------


async def set_schedule(
    db: Database,
    code: str,
    cron: str,
    timezone: str,
    *,
    actor: Identity,
    now: datetime,
    version: int | None = None,
) -> None:
    """A new cron and timezone (RegionError, ScheduleError when they cannot be used;
    RegionChanged when the region is no longer at `version`)."""
    async with db.transaction() as session:
        await update_region(
            session,
            code,
            actor=await acting(session, actor),
            action="edit_schedule",
            now=now,
            version=version,
            cron=cron,
            timezone=timezone,
        )


async def set_active(
    db: Database,
    code: str,
    active: bool,
    *,
    actor: Identity,
    now: datetime,
    version: int | None = None,
) -> None:
    """Pause (False) or resume (True) a region's schedule (RegionChanged as set_schedule)."""
    async with db.transaction() as session:
        await update_region(
            session,
            code,
            actor=await acting(session, actor),
            action="resume" if active else "pause",
            now=now,
            version=version,
            active=active,
        )


async def add_region(db: Database, region: RegionInput, *, actor: Identity, now: datetime) -> None:
    async with db.transaction() as session:
        await create_region(session, region, actor=await acting(session, actor), now=now)


async def remove_region(
    db: Database, code: str, *, actor: Identity, version: int | None = None
) -> None:
    """Delete a region (RegionChanged when it is no longer at `version`)."""
    async with db.transaction() as session:
        await delete_region(session, code, actor=await acting(session, actor), version=version)


async def run_now(
    db: Database, redis: ArqRedis, settings: Settings, code: str, fire: datetime, *, actor: Identity
) -> bool:
    """Queue a manual tick of `code` for `fire`; False when one for that second is queued."""
    operator = await acting_now(db, actor)
    permissions.require(operator, Role.EDITOR, "run regions now")  # before anything is queued
    added = await enqueue_ticks(redis, settings, [TickRequest(code, fire, manual=True)])
    async with db.transaction() as session:
        await audit.record_action(
            session,
            actor=operator,
            action="run_now",
            entity="region",
            entity_id=code,
            details={"fire": fire.isoformat(), "enqueued": bool(added)},
        )
    return bool(added)
