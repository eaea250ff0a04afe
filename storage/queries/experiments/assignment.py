"""Sticky assignments: one statement stores fresh ones and reads the stored ones.

A stored assignment always wins (ON CONFLICT DO NOTHING, then a read), so weight changes and
pause/resume never move a unit. The api calls these on a pooled asyncpg connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Experiment,
    ExperimentStatus,
)

# A connection of our own or one lent by a pool (the API's hot paths use asyncpg directly).
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


@dataclass(frozen=True, slots=True)
class ExperimentDef:
    """A live experiment as the assignment path needs it."""

    id: int
    key: str
    status: str
    variant_keys: tuple[str, ...]
    weights: tuple[float, ...]
    coverage: float
    seed: str | None
    hash_version: int


async def live_definitions(session: AsyncSession) -> list[ExperimentDef]:
    """Running and paused experiments (paused ones serve nothing, but are known)."""
    rows = await session.scalars(
        select(Experiment)
        .where(Experiment.status.in_([ExperimentStatus.RUNNING, ExperimentStatus.PAUSED]))
        .order_by(Experiment.id)
    )
    return [
        ExperimentDef(
            id=e.id,
            key=e.key,
            status=e.status,
            variant_keys=tuple(v.key for v in e.variants),
            weights=tuple(v.weight for v in e.variants),
            coverage=e.coverage,
            seed=e.seed,
            hash_version=e.hash_version,
        )
        for e in rows
    ]


@dataclass(frozen=True, slots=True)
class StoredAssignment:
    experiment_id: int
    variant_key: str
    bucket: float
    new: bool


_ASSIGN_SQL = """
WITH fresh AS (
    INSERT INTO assignment (unit_id, experiment_id, variant_key, bucket)
    SELECT $1, f.experiment_id, f.variant_key, f.bucket
    FROM unnest($2::bigint[], $3::text[], $4::float8[]) AS f(experiment_id, variant_key, bucket)
    ON CONFLICT (unit_id, experiment_id) DO NOTHING
    RETURNING experiment_id, variant_key, bucket
)
SELECT experiment_id, variant_key, bucket, true AS new FROM fresh
UNION ALL
SELECT experiment_id, variant_key, bucket, false AS new FROM assignment
WHERE unit_id = $1 AND experiment_id = ANY($5::bigint[])
"""


async def assign_unit(
    conn: Conn,
    unit_id: str,
    experiment_ids: Sequence[int],
    candidates: Sequence[tuple[int, str, float]],
) -> dict[int, StoredAssignment]:
    """Store fresh assignments (experiment id, variant, bucket) unless the unit has one already.

    Returns the unit's assignment in each of `experiment_ids` it has one in: stored before
    (new=False) or just now (new=True). One round trip in the usual case.
    """
    found = await _assign_once(conn, unit_id, experiment_ids, candidates)
    missing = [c for c in candidates if c[0] not in found]
    if missing:
        # A concurrent request stored it after this statement's snapshot: read it now.
        found.update(await _assign_once(conn, unit_id, [c[0] for c in missing], []))
    return found


async def _assign_once(
    conn: Conn,
    unit_id: str,
    experiment_ids: Sequence[int],
    candidates: Sequence[tuple[int, str, float]],
) -> dict[int, StoredAssignment]:
    rows = await conn.fetch(
        _ASSIGN_SQL,
        unit_id,
        [c[0] for c in candidates],
        [c[1] for c in candidates],
        [c[2] for c in candidates],
        list(experiment_ids),
    )
    return {
        r["experiment_id"]: StoredAssignment(
            r["experiment_id"], r["variant_key"], r["bucket"], r["new"]
        )
        for r in rows
    }
