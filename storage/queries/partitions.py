"""Partition maintenance and retention of event_log and follower_sample (see
storage/partitions.py for names and bounds). Functions never commit: the caller runs each step
in its own short transaction, under `lock_table` so replicas never race on the same DDL.

Costs: creating an empty partition and dropping one are catalog operations (milliseconds at
any table size; they briefly take an ACCESS EXCLUSIVE lock on the parent, bounded by
`lock_timeout`). Moving rows out of the DEFAULT costs what those rows cost to copy: the DEFAULT
holds only rows that arrived before their partition existed, normally none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage import partitions as p

# DDL waits at most this long for ingestion's locks, then fails and is retried next run:
# maintenance must never stall the api behind a lock queue.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    start: datetime | None  # None: the DEFAULT partition (or one not named by us)
    is_default: bool
    bytes: int


async def lock_table(session: AsyncSession, table: p.PartitionedTable) -> None:
    """One maintainer per table for the rest of the transaction; DDL waits `LOCK_TIMEOUT`."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": table.lock_id})
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


async def partitions(session: AsyncSession, table: p.PartitionedTable) -> list[Partition]:
    """The table's partitions, oldest first (ours by name; the DEFAULT last)."""
    rows = await session.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default, "
            "pg_total_relation_size(c.oid) AS bytes "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": table.name},
    )
    found = [
        Partition(r.relname, p.start_of(table, r.relname), bool(r.is_default), int(r.bytes))
        for r in rows
    ]
    return sorted(found, key=lambda x: (x.is_default, x.start is None, x.start or datetime.min))


async def default_starts(session: AsyncSession, table: p.PartitionedTable) -> list[datetime]:
    """Starts of the partitions the DEFAULT's rows belong to."""
    trunc = "day" if table.unit == "day" else "month"
    rows = await session.execute(
        text(
            f"SELECT DISTINCT date_trunc('{trunc}', {table.column} AT TIME ZONE 'UTC') AS s "  # noqa: S608
            f"FROM {table.default} ORDER BY s"
        )
    )
    return [p.floor(table, r.s.date()) for r in rows]


async def exists(session: AsyncSession, name: str) -> bool:
    found = await session.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name})
    return bool(found)


async def ensure_partition(
    session: AsyncSession, table: p.PartitionedTable, start: datetime
) -> int | None:
    """Create the partition starting at `start` unless it exists. Returns None when it existed,
    else how many rows it took over from the DEFAULT."""
    if await exists(session, p.name_of(table, start)):
        return None
    waiting = await session.scalar(
        text(
            f"SELECT count(*) FROM {table.default} "  # noqa: S608
            f"WHERE {table.column} >= :lo AND {table.column} < :hi"
        ),
        {"lo": start, "hi": p.following(table, start)},
    )
    if not waiting:
        await session.execute(text(p.create_sql(table, start)))
        return 0
    for statement in p.create_moving_sql(table, start):
        await session.execute(text(statement))
    return int(waiting)


async def drop_partition(session: AsyncSession, name: str) -> None:
    """Drop one partition: a catalog operation, whatever its size."""
    await session.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


async def delete_default_before(
    session: AsyncSession, table: p.PartitionedTable, cutoff: datetime
) -> int:
    """Rows in the DEFAULT older than retention (they would otherwise outlive it)."""
    result = await session.execute(
        text(f"DELETE FROM {table.default} WHERE {table.column} < :cutoff"),  # noqa: S608
        {"cutoff": cutoff},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def raise_horizon(session: AsyncSession, table: p.PartitionedTable, before: datetime) -> None:
    """Record that rows before `before` are gone for good (never lowers it)."""
    await session.execute(
        text(
            "INSERT INTO retention_horizon AS h (table_name, dropped_before) "
            "VALUES (:table, :before) ON CONFLICT (table_name) DO UPDATE "
            "SET dropped_before = greatest(h.dropped_before, EXCLUDED.dropped_before)"
        ),
        {"table": table.name, "before": before},
    )


async def horizon(session: AsyncSession, table: p.PartitionedTable) -> datetime | None:
    """Rows before this were dropped by retention (None: nothing was dropped)."""
    value = await session.scalar(
        text("SELECT dropped_before FROM retention_horizon WHERE table_name = :table"),
        {"table": table.name},
    )
    return value if isinstance(value, datetime) else None


@dataclass(frozen=True, slots=True)
class TableSize:
    table: str
    bytes: int
    partitions: int
    oldest: datetime | None  # start of the oldest partition of ours
    default_bytes: int


async def table_sizes(session: AsyncSession) -> list[TableSize]:
    """Size and oldest partition of each partitioned table (the console's Overview)."""
    out = []
    for table in p.TABLES:
        parts = await partitions(session, table)
        dated = [x.start for x in parts if x.start is not None]
        out.append(
            TableSize(
                table.name,
                sum(x.bytes for x in parts),
                len(parts),
                min(dated) if dated else None,
                sum(x.bytes for x in parts if x.is_default),
            )
        )
    return out
