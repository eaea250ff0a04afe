"""The Regions screen's read model: every region, and the latest run of those on screen.

A refresh (every 2 s) costs, at 10,000 regions:
- the region table's fingerprint (storage.queries.regions.regions_fingerprint: one aggregate,
  ~2 ms; ~15 ms at 100,000); only when it changed (or every FULL_READ_S), every region again
  as columns (storage.queries.regions.region_columns: ~10 ms; ~90 ms at 100,000, nearly all
  of it in PostgreSQL);
- the latest run of only the regions on and around the screen (`window`: ~100 index probes,
  ~3 ms), never the whole ledger (a DISTINCT ON over it took ~150 ms);
- when nothing changed (no region written, no run read changed, no next run passed) the very
  same snapshot comes back and the screen skips its redraw.

Memory: the regions are columns (console.data.region_columns: ~4 MB at 100,000 regions, no
object per region); a RegionRow is made only for a row painted or selected. The latest runs
kept are those of the last window read: a region scrolled away shows its last run as unknown
until it is on screen again (the screen reads it at once).

Edits (the Regions screen's commands, each one audited write; a refusal raises a
storage.user_error.UserError): `set_schedule`, `set_active`, `add_region`, `remove_region`,
`run_now`. Each edit of an existing region carries the version its row showed
(RegionRow.version): one made against a region someone else changed since is refused with
`RegionChanged`, which says who changed it, when, and what it is now.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from arq.connections import ArqRedis

from console.data.acting import acting, acting_now
from console.data.common import NextRunCache
from console.data.region_columns import RegionColumns, RegionSelection, select
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
    region_columns,
    regions_fingerprint,
    update_region,
)
from storage.queries.runs import LastRun
from storage.settings import Settings

# For screens (they import no storage module): the new-region form's type, and the shapes of
# what a load returns.
__all__ = ["RegionColumns", "RegionInput", "RegionSelection", "select"]

# Read the regions in full at least this often, fingerprint or not (it misses writes that
# bypass the ORM's updated_at).
FULL_READ_S = 30.0
FIRST_WINDOW = 96  # rows whose latest run the first load reads (before anything is on screen)


class RegionTable:
    """The last snapshot of the regions, and what the next load must read to renew it."""

    def __init__(self, cache: NextRunCache | None = None) -> None:
        self.next_runs = cache or NextRunCache()
        self.columns = RegionColumns()
        self._fingerprint: tuple[int, Decimal] | None = None
        self._read_at = 0.0  # time.monotonic() of the last full read
        self._valid_until: datetime | None = None  # the first next fire of any schedule

    def needs_read(self, fingerprint: tuple[int, Decimal]) -> bool:
        return (
            self._fingerprint is None
            or fingerprint != self._fingerprint
            or time.monotonic() - self._read_at >= FULL_READ_S
        )

    def note_read(self, fingerprint: tuple[int, Decimal]) -> None:
        self._fingerprint, self._read_at = fingerprint, time.monotonic()

    def build(
        self,
        record: Mapping[str, Any] | None,
        now: datetime,
        last_runs: dict[str, LastRun | None],  # None: read, and the region never ran
    ) -> RegionColumns:
        """The snapshot for this load: from `record` (a full read) or the last one, with these
        latest runs; the very same snapshot when nothing changed."""
        columns = self.columns
        if record is not None:
            columns = RegionColumns.from_record(record, now, self.next_runs)
        elif self._valid_until is not None and now >= self._valid_until:
            columns = columns.with_fires(now, self.next_runs)
        if columns is self.columns and columns.last_runs == last_runs:
            return columns
        columns = columns.with_last_runs(last_runs)
        self.columns, self._valid_until = columns, columns.valid_until()
        return columns


@dataclass(frozen=True, slots=True)
class RegionsLoad:
    rows: RegionColumns
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
        record = dict(await region_columns(session)) if table.needs_read(fingerprint) else None
        codes = window()
        if codes is None:
            if record is not None:
                codes = (record["codes"] or "").split("\n", FIRST_WINDOW)[:FIRST_WINDOW]
            else:
                codes = table.columns.codes_between(0, FIRST_WINDOW)
        found = await run_queries.last_runs_of(session, codes)
    last_runs = {code: found.get(code) for code in codes}
    # Off the UI loop: the columns' arrays are built in C loops, ~10 ms at 100,000 regions.
    columns = await asyncio.to_thread(table.build, record, now, last_runs)
    if record is not None:
        table.note_read(fingerprint)  # once built
    return RegionsLoad(columns, frozenset(codes))


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
