"""Time partitions of the tables that grow without bound: `event_log` (daily) and
`follower_sample` (monthly). Pure: names, bounds and DDL text; no I/O.

Invariants:
- A partition's name says its range: `event_log_p20260131` holds [2026-01-31, 2026-02-01) UTC,
  `follower_sample_p202601` holds January 2026. Bounds are read back from names, never parsed
  from `pg_get_expr` (whose text depends on the session's TimeZone); tables not named this way
  are left alone.
- Every table has a DEFAULT partition (`<table>_default`): a row whose partition does not exist
  yet lands there and is never lost; maintenance moves it out when it creates the partition.
- Bounds are UTC midnights (timestamptz literals carry `+00`), so a day's events are one
  partition and dropping a day is `DROP TABLE` (metadata, not a DELETE).

Why these sizes: events arrive at up to ~50,000/s (4 G rows a day at peak): one day is the unit
of retention and of rollup recomputation, and a day's partition keeps its indexes in memory
while it is written. Samples are ~200,000 rows a day (100,000 creators, 2 a day): a month is
~6 M rows, and a creator's year is 12 index probes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    name: str
    column: str  # the partition key (timestamptz)
    unit: Literal["day", "month"]
    ahead: int  # partitions kept ready past the current one

    @property
    def default(self) -> str:
        return f"{self.name}_default"

    @property
    def lock_id(self) -> int:
        """Advisory lock id of this table's maintenance (replicas never race on DDL)."""
        return 0x7061_7274_0000 + (1 if self.unit == "day" else 2)


EVENTS = PartitionedTable("event_log", "occurred_at", "day", ahead=3)
SAMPLES = PartitionedTable("follower_sample", "observed_at", "month", ahead=2)
TABLES: tuple[PartitionedTable, ...] = (EVENTS, SAMPLES)


def floor(table: PartitionedTable, at: datetime | date) -> datetime:
    """Start (UTC) of the partition holding `at`."""
    if isinstance(at, datetime):
        at = at.astimezone(UTC).date()
    if table.unit == "month":
        at = at.replace(day=1)
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


def following(table: PartitionedTable, start: datetime) -> datetime:
    """Start of the partition after the one starting at `start`."""
    if table.unit == "day":
        return start + timedelta(days=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def starts_between(table: PartitionedTable, first: datetime, last: datetime) -> list[datetime]:
    """Starts of every partition from the one holding `first` to the one holding `last`."""
    out: list[datetime] = []
    start = floor(table, first)
    end = floor(table, last)
    while start <= end:
        out.append(start)
        start = following(table, start)
    return out


def name_of(table: PartitionedTable, start: datetime) -> str:
    stamp = start.strftime("%Y%m%d" if table.unit == "day" else "%Y%m")
    return f"{table.name}_p{stamp}"


def start_of(table: PartitionedTable, partition: str) -> datetime | None:
    """The start a partition's name encodes, or None when it is not one of ours."""
    digits = 8 if table.unit == "day" else 6
    match = re.fullmatch(rf"{re.escape(table.name)}_p(\d{{{digits}}})", partition)
    if match is None:
        return None
    fmt = "%Y%m%d" if table.unit == "day" else "%Y%m"
    try:
        return datetime.strptime(match.group(1), fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def _literal(at: datetime) -> str:
    return "'" + at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00") + "'"


def bounds_sql(table: PartitionedTable, start: datetime) -> str:
    return f"FROM ({_literal(start)}) TO ({_literal(following(table, start))})"


def create_sql(table: PartitionedTable, start: datetime) -> str:
    """An empty partition (use only when the DEFAULT holds none of its rows)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {name_of(table, start)} PARTITION OF {table.name} "
        f"FOR VALUES {bounds_sql(table, start)}"
    )


def create_moving_sql(table: PartitionedTable, start: datetime) -> list[str]:
    """A partition whose rows already sit in the DEFAULT: build it beside the table, move the
    rows out of the DEFAULT, then attach it (ATTACH checks the DEFAULT no longer has any)."""
    # Every name and bound here comes from our constants and dates, never from input.
    part = name_of(table, start)
    lo, hi = _literal(start), _literal(following(table, start))
    return [
        f"CREATE TABLE {part} (LIKE {table.name} INCLUDING DEFAULTS)",
        f"WITH moved AS (DELETE FROM {table.default} WHERE {table.column} >= {lo} "  # noqa: S608
        f"AND {table.column} < {hi} RETURNING *) INSERT INTO {part} SELECT * FROM moved",
        f"ALTER TABLE {table.name} ATTACH PARTITION {part} FOR VALUES FROM ({lo}) TO ({hi})",
    ]


def retention_cutoff(table: PartitionedTable, now: datetime, keep_days: int) -> datetime | None:
    """Partitions ending at or before this are dropped; None keeps everything (keep_days 0).

    A partition goes only once all of it is older than `keep_days` days."""
    if keep_days <= 0:
        return None
    return (now - timedelta(days=keep_days)).astimezone(UTC)
