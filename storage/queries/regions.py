"""Regions: reads for the scheduler and console, and audited edits.

No function commits: the caller owns the transaction (`Database.transaction()`), so an edit
and its audit row commit together or not at all.

Versions: every write bumps `region.version`. An edit may say which version it was made
against (`version=`, what the console showed); it locks the row (FOR UPDATE, so two racing
edits queue) and is refused with `RegionChanged` when the row has moved on since: the second
of two operators sees the first one's change instead of overwriting it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Numeric, cast, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.database import driver
from storage.models import CatchupPolicy, OverlapPolicy, Region, Role
from storage.permissions import Actor
from storage.queries import audit, audit_log
from storage.schedule import parse_schedule, validate_timezone
from storage.user_error import UserError

SCHEDULE_FIELDS = ("cron", "timezone", "active")


class RegionError(ValueError, UserError):
    """An edit that cannot be made, with the reason."""

    title = "region edit refused"


class RegionChanged(RegionError):
    """The region changed since the version the edit was made against: who, when, and what it
    is now, so the person can look again before deciding."""

    title = "changed by someone else"


async def _refuse_if_moved(session: AsyncSession, region: Region, version: int | None) -> None:
    if version is None or region.version == version:
        return
    last = await audit_log.latest_change(session, "region", region.code)
    who = f" by {last.actor} at {last.at:%H:%M} UTC" if last is not None else ""
    paused = "" if region.active else " (paused)"
    raise RegionChanged(
        f"{region.code} changed{who} (version {version} → {region.version}): "
        f"now `{region.cron}` {region.timezone}{paused}"
    )


async def _refuse_if_gone(session: AsyncSession, code: str, version: int | None) -> RegionError:
    """A region that is not there: deleted by someone else if the edit knew a version of it."""
    if version is None:
        return RegionError(f"region {code} does not exist")
    last = await audit_log.latest_change(session, "region", code)
    who = f" by {last.actor} at {last.at:%H:%M} UTC" if last is not None else ""
    return RegionChanged(f"{code} was deleted{who}")


class RegionInput(BaseModel):
    """A region as typed by a person: validated before anything is written."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    name: str = Field(min_length=1, max_length=200)
    cron: str
    timezone: str = "UTC"
    active: bool = True
    bbox: list[float] | None = None
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    catchup_policy: CatchupPolicy = CatchupPolicy.RUN_ONCE

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return parse_schedule(value).cron

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and len(value) != 4:
            raise ValueError("bbox is [min_lon, min_lat, max_lon, max_lat]")
        return value


def snapshot(region: Region) -> dict[str, Any]:
    return {
        "code": region.code,
        "name": region.name,
        "cron": region.cron,
        "timezone": region.timezone,
        "active": region.active,
        "bbox": region.bbox,
        "overlap_policy": region.overlap_policy,
        "catchup_policy": region.catchup_policy,
    }


async def list_regions(session: AsyncSession, active_only: bool = False) -> list[Region]:
    query = select(Region).order_by(Region.code)
    if active_only:
        query = query.where(Region.active.is_(True))
    return list(await session.scalars(query))


async def get_region(session: AsyncSession, code: str) -> Region | None:
    return await session.get(Region, code)


async def create_region(
    session: AsyncSession, data: RegionInput, *, actor: Actor, now: datetime | None = None
) -> Region:
    """A new region; its schedule starts at `now` (the caller's clock; default the real one)."""
    permissions.require(actor, Role.EDITOR, "edit regions")
    if await session.get(Region, data.code) is not None:
        raise RegionError(f"region {data.code} already exists")
    parse_schedule(data.cron, data.timezone)
    region = Region(**data.model_dump(), schedule_since=now or datetime.now(UTC))
    session.add(region)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="region",
        entity_id=region.code,
        before=None,
        after=snapshot(region),
    )
    await session.flush()
    return region


async def update_region(
    session: AsyncSession,
    code: str,
    *,
    actor: Actor,
    action: str = "update",
    now: datetime | None = None,
    version: int | None = None,
    **changes: Any,
) -> Region:
    """Change fields of a region; a schedule change or a resume starts the schedule anew at
    `now` (the caller's clock; default the real one). A change that leaves the region as it
    was writes nothing (no update, no audit row). `version`: the version the change was made
    against (RegionChanged when the region is no longer at it; None: no check)."""
    permissions.require(actor, Role.EDITOR, "edit regions")
    region = await session.get(Region, code, with_for_update=True, populate_existing=True)
    if region is None:
        raise await _refuse_if_gone(session, code, version)
    await _refuse_if_moved(session, region, version)
    before = snapshot(region)
    cron = changes.get("cron", region.cron)
    timezone = changes.get("timezone", region.timezone)
    changes["cron"] = parse_schedule(cron, timezone).cron
    for key in changes:
        if not hasattr(Region, key) or key in ("code", "created_at", "updated_at", "version"):
            raise RegionError(f"cannot change {key!r} of a region")
    if before == {**before, **{k: v for k, v in changes.items() if k in before}}:
        return region
    for key, value in changes.items():
        setattr(region, key, value)
    region.version += 1
    after = snapshot(region)
    restarted = any(before[f] != after[f] for f in SCHEDULE_FIELDS) and region.active
    if restarted:
        region.schedule_since = now or datetime.now(UTC)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="region",
        entity_id=code,
        before=before,
        after=after,
    )
    await session.flush()
    return region


async def delete_region(
    session: AsyncSession, code: str, *, actor: Actor, version: int | None = None
) -> None:
    """Delete a region; `version` as for update_region (locked, refused when moved on)."""
    permissions.require(actor, Role.EDITOR, "edit regions")
    region = await session.get(Region, code, with_for_update=True, populate_existing=True)
    if region is None:
        raise await _refuse_if_gone(session, code, version)
    await _refuse_if_moved(session, region, version)
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity="region",
        entity_id=code,
        before=snapshot(region),
        after=None,
    )
    await session.execute(delete(Region).where(Region.code == code))


async def upsert_seed_regions(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert regions that do not exist yet; leave existing ones as people edited them."""
    if not rows:
        return 0
    stmt = insert(Region).values(rows).on_conflict_do_nothing(index_elements=[Region.code])
    result = await session.execute(stmt.returning(Region.code))
    return len(result.all())


async def list_region_summaries(session: AsyncSession) -> list[asyncpg.Record]:
    """(code, name, cron, timezone, active, version) records of every region by code,
    straight from asyncpg: no ORM objects, no SQLAlchemy row processing, not even a tuple per
    row (records unpack like tuples), so reading 10,000 regions costs ~10 ms, most of it in
    PostgreSQL."""
    conn = await driver(session)
    return await conn.fetch(
        "SELECT code, name, cron, timezone, active, version FROM region ORDER BY code"
    )


# Every region as columns, in one row: nothing per region reaches Python, not even an int.
# Codes are joined by a newline (they match ^[A-Z][A-Z0-9_]+$) and names are back to back
# (a name may hold any character); where each ends, and each region's version, active flag
# and schedule (an index into the distinct (cron, timezone) pairs, which come once each), are
# packed binary (int4send/boolsend: big-endian), so the driver hands over one bytes object
# per column instead of decoding 100,000 array elements into ints on the caller's event loop.
# Every column is aggregated from one input in code order (byte order: COLLATE "C"), so
# position i is the same region in every column.
_REGION_COLUMNS = """
WITH schedule AS (
    SELECT cron, timezone, (row_number() OVER (ORDER BY cron, timezone) - 1)::int AS id
    FROM (SELECT DISTINCT cron, timezone FROM region) AS pairs
)
SELECT
    count(*)::int AS count,
    (SELECT array_agg(cron ORDER BY id) FROM schedule) AS crons,
    (SELECT array_agg(timezone ORDER BY id) FROM schedule) AS timezones,
    string_agg(code, E'\\n') AS codes,
    string_agg(int4send(code_end), '') AS code_ends,
    string_agg(name, '') AS names,
    string_agg(int4send(name_end), '') AS name_ends,
    string_agg(boolsend(active), '') AS active,
    string_agg(int4send(version), '') AS versions,
    string_agg(int4send(schedule_id), '') AS schedule_ids
FROM (
    SELECT
        r.code,
        r.name,
        r.active,
        r.version,
        s.id AS schedule_id,
        (sum(length(r.code) + 1) OVER upto - 1)::int AS code_end,
        (sum(length(r.name)) OVER upto)::int AS name_end
    FROM region AS r JOIN schedule AS s USING (cron, timezone)
    WINDOW upto AS (ORDER BY r.code COLLATE "C" ROWS UNBOUNDED PRECEDING)
    ORDER BY r.code COLLATE "C"
) AS ordered
"""


async def region_columns(session: AsyncSession) -> asyncpg.Record:
    """Every region, by code (byte order), as columns in one record: `count`; `crons` and
    `timezones` (the distinct schedules); `codes` (joined by newlines) and `names` (back to
    back), str; `code_ends` and `name_ends` (where region i's code/name ends in them, exclusive),
    `versions` and `schedule_ids` (an index into crons/timezones), big-endian int4 bytes;
    `active`, one byte (0/1) per region. All but `count` are None when there is no region.

    ~90 ms in PostgreSQL at 100,000 regions (the row-per-region read took ~300 ms there, most
    of it making a record, two strs and an int per row in Python); in Python a few flat
    objects, made by the driver in a few memcpys (~2 ms at 100,000)."""
    conn = await driver(session)
    found: asyncpg.Record | None = await conn.fetchrow(_REGION_COLUMNS)
    assert found is not None  # an aggregate without GROUP BY: always one row
    return found


async def regions_fingerprint(session: AsyncSession) -> tuple[int, Decimal]:
    """(count, exact sum of updated_at as epoch seconds) of the region table: one aggregate in
    PostgreSQL (~2 ms at 10,000 regions, ~15 ms at 100,000), nothing per row sent back.

    Every write through this module changes it: an insert or a delete the count, an update
    the row's updated_at (now() of its transaction, via the ORM's onupdate), hence the sum,
    even when that transaction started before one already seen (a max would miss that); the
    sum is numeric, so a change of a microsecond shows. A write that bypasses the ORM and
    leaves updated_at alone is not seen: readers re-read in full now and then
    (console.data.common.FULL_READ_S)."""
    epoch = cast(func.extract("epoch", Region.updated_at), Numeric)
    count, total = (await session.execute(select(func.count(), func.sum(epoch)))).one()
    return int(count), Decimal(total or 0)


async def regions_changed_since(session: AsyncSession, since: datetime) -> list[asyncpg.Record]:
    """(code, name, cron, timezone, active, version) of the regions updated after `since`
    (a scan of the table in PostgreSQL, ~10 ms at 100,000 regions; only the changed rows come
    back)."""
    conn = await driver(session)
    return await conn.fetch(
        "SELECT code, name, cron, timezone, active, version FROM region WHERE updated_at > $1",
        since,
    )


async def transaction_now(session: AsyncSession) -> datetime:
    """The database's now(): the start of the session's transaction. A reader that read the
    regions in this transaction has seen every write committed before it (and passes it, less
    a margin for transactions that began earlier and commit later, as `since` next time)."""
    now = await session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now
