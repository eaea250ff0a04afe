"""Sticky assignment: a stored variant wins; a unit without one is bucketed the GrowthBook way.

Definitions of live experiments are cached for a second or two, so a request costs one round
trip to Postgres; an edit from the console reaches the API within `ttl_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from engine.maths import hashing
from storage.database import Database
from storage.models import ExperimentStatus
from storage.queries import experiments as q

DEFINITIONS_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class Served:
    experiment: str
    variant: str
    bucket: float
    new: bool


@dataclass(frozen=True, slots=True)
class Skipped:
    experiment: str
    reason: str


class DefinitionCache:
    def __init__(self, db: Database, ttl_s: float = DEFINITIONS_TTL_S) -> None:
        self._db = db
        self._ttl_s = ttl_s
        self._loaded_at = -1e9
        self._by_key: dict[str, q.ExperimentDef] = {}
        self._lock = asyncio.Lock()

    async def get(self) -> dict[str, q.ExperimentDef]:
        if time.monotonic() - self._loaded_at < self._ttl_s:
            return self._by_key
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self._ttl_s:
                async with self._db.session() as session:
                    defs = await q.live_definitions(session)
                self._by_key = {d.key: d for d in defs}
                self._loaded_at = time.monotonic()
        return self._by_key

    def invalidate(self) -> None:
        self._loaded_at = -1e9


def _bucketing(d: q.ExperimentDef) -> hashing.Definition:
    return hashing.Definition(
        key=d.key,
        variant_keys=d.variant_keys,
        weights=d.weights,
        coverage=d.coverage,
        seed=d.seed,
        hash_version=d.hash_version,
    )


async def assign(
    conn: q.Conn,
    definitions: dict[str, q.ExperimentDef],
    unit_id: str,
    keys: Sequence[str] | None,
) -> tuple[list[Served], list[Skipped]]:
    """The unit's variant in each running experiment asked for (all running ones if None)."""
    skipped: list[Skipped] = []
    if keys is None:
        wanted = [d for d in definitions.values() if d.status == ExperimentStatus.RUNNING]
        skipped = [
            Skipped(d.key, f"experiment is {d.status}")
            for d in definitions.values()
            if d.status != ExperimentStatus.RUNNING
        ]
    else:
        wanted = []
        for key in dict.fromkeys(keys):
            d = definitions.get(key)
            if d is None:
                skipped.append(Skipped(key, "no running experiment with this key"))
            elif d.status != ExperimentStatus.RUNNING:
                skipped.append(Skipped(key, f"experiment is {d.status}"))
            else:
                wanted.append(d)
    if not wanted:
        return [], skipped
    candidates: list[tuple[int, str, float]] = []
    for d in wanted:
        bucketed = hashing.assign(_bucketing(d), unit_id)
        if bucketed is not None:
            candidates.append((d.id, bucketed.variant_key, bucketed.bucket))
    stored = await q.assign_unit(conn, unit_id, [d.id for d in wanted], candidates)
    served = []
    for d in wanted:
        got = stored.get(d.id)
        if got is None:
            skipped.append(Skipped(d.key, "unit is outside the experiment's coverage"))
        else:
            served.append(Served(d.key, got.variant_key, got.bucket, got.new))
    return served, skipped
