"""Backfill for the console: check a range as it is typed, ask for it, cancel it.

The check runs the same rules the write does (storage.queries.backfill.backfill_fires: at most
1,000 fire times, past only), so the modal refuses before anything is written; the write
(engine.backfill) checks again, in its transaction, against the region as it is then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from arq.connections import ArqRedis

from console.data.acting import Identity, acting_now
from console.data.common import checked_schedule
from engine import backfill
from engine.backfill import BackfillReport
from storage import permissions
from storage.database import Database
from storage.models import Role
from storage.queries.backfill import MAX_FIRES, BackfillError, backfill_fires
from storage.settings import Settings

__all__ = ["MAX_FIRES", "BackfillPlan", "BackfillReport", "cancel", "parse_when", "plan", "request"]


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    start: datetime
    end: datetime
    fires: list[datetime]


def parse_when(text: str) -> datetime | str:
    """`YYYY-MM-DD HH:MM` (UTC, as the console speaks) or ISO 8601; or why not."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return f"{value!r} is not a datetime (YYYY-MM-DD HH:MM, UTC)"
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def plan(
    cron: str, timezone: str, start_text: str, end_text: str, now: datetime
) -> BackfillPlan | str:
    """The fire times the backfill would queue, or the reason it is refused."""
    schedule = checked_schedule(cron, timezone)
    if isinstance(schedule, str):
        return f"the region's schedule cannot be used: {schedule}"
    start, end = parse_when(start_text), parse_when(end_text)
    if isinstance(start, str):
        return f"from: {start}"
    if isinstance(end, str):
        return f"to: {end}"
    try:
        return BackfillPlan(start, end, backfill_fires(schedule, start, end, now))
    except BackfillError as exc:
        return str(exc)


async def request(
    db: Database,
    redis: ArqRedis,
    settings: Settings,
    code: str,
    start: datetime,
    end: datetime,
    *,
    actor: Identity,
    now: datetime,
) -> BackfillReport:
    """Queue a region's past fire times (an editor's edit: refused for a viewer)."""
    name = await _editor(db, actor, "backfill regions")
    return await backfill.request_backfill(
        db, redis, settings, code, start, end, actor=name, now=now
    )


async def cancel(
    db: Database, redis: ArqRedis, settings: Settings, code: str, *, actor: Identity, now: datetime
) -> int:
    name = await _editor(db, actor, "cancel backfills")
    return await backfill.cancel_backfill(db, redis, settings, code, actor=name, now=now)


async def _editor(db: Database, who: Identity, what: str) -> str:
    """The operator's name once they may edit regions (PermissionDenied otherwise): the engine's
    backfill opens its own transactions, so the role is read just before, in one of its own."""
    operator = await acting_now(db, who)
    permissions.require(operator, Role.EDITOR, what)
    return permissions.actor_name(operator)
