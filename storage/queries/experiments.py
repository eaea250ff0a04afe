"""Experiments: definitions and audited edits, sticky assignments, event ingestion, rollups.

The hot paths (assignment, event batches) are single statements; rollups upsert only the rows
that changed and delete the ones that vanished, so a re-run of an unchanged window writes
nothing and leaves the rollup tables byte-identical.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Experiment,
    ExperimentFunnel,
    ExperimentStatus,
    ExperimentVariant,
    RollupRun,
)
from storage.queries import audit
from storage.user_error import UserError

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
EVENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$"
WEIGHT_TOLERANCE = 1e-6
ROLLUP_TABLES = ("rollup_daily", "rollup_experiment", "rollup_funnel")
ROLLUP_LOCK = 0x6364_726F  # advisory lock id: one rollup job at a time, whoever starts it


# A connection of our own or one lent by a pool (the API's hot paths use asyncpg directly).
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


class ExperimentError(ValueError, UserError):
    """An edit that cannot be made, with the reason."""

    title = "experiment edit refused"


# --- definitions -----------------------------------------------------------------------------


class VariantInput(BaseModel):
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(default="", max_length=200)
    weight: float = Field(ge=0, le=1)


class FunnelInput(BaseModel):
    name: str = Field(pattern=KEY_PATTERN)
    steps: list[str] = Field(min_length=2, max_length=20)

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[str]) -> list[str]:
        for step in steps:
            if not re.match(EVENT_NAME_PATTERN, step):
                raise ValueError(f"funnel step {step!r} is not an event name")
        return steps


def check_weights(weights: Sequence[float]) -> None:
    if any(not 0 <= w <= 1 or math.isnan(w) for w in weights):
        raise ExperimentError("every weight is between 0 and 1")
    total = sum(weights)
    if abs(total - 1) > WEIGHT_TOLERANCE:
        raise ExperimentError(f"weights sum to {total:.6g}; they must sum to 1")


class ExperimentInput(BaseModel):
    """An experiment as typed by a person or seeded: validated before anything is written."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    hypothesis: str = Field(default="", max_length=5000)
    primary_metric: str = Field(pattern=EVENT_NAME_PATTERN)
    coverage: float = Field(default=1.0, ge=0, le=1)
    seed: str | None = Field(default=None, max_length=200)
    hash_version: int = Field(default=2, ge=1, le=2)
    variants: list[VariantInput] = Field(min_length=2, max_length=20)
    funnels: list[FunnelInput] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentInput:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        names = [f.name for f in self.funnels]
        if len(set(names)) != len(names):
            raise ValueError("funnel names must be unique")
        check_weights([v.weight for v in self.variants])
        return self


def snapshot(experiment: Experiment) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "coverage": experiment.coverage,
        "seed": experiment.seed,
        "hash_version": experiment.hash_version,
        "primary_metric": experiment.primary_metric,
        "variants": [
            {"key": v.key, "name": v.name, "weight": v.weight} for v in experiment.variants
        ],
        "funnels": [{"name": f.name, "steps": list(f.steps)} for f in experiment.funnels],
    }


async def list_experiments(session: AsyncSession) -> list[Experiment]:
    rows = await session.scalars(select(Experiment).order_by(Experiment.id))
    return list(rows)


async def get_experiment(session: AsyncSession, key: str) -> Experiment | None:
    result: Experiment | None = await session.scalar(
        select(Experiment).where(Experiment.key == key)
    )
    return result


async def _require(session: AsyncSession, key: str, lock: bool = True) -> Experiment:
    stmt = select(Experiment).where(Experiment.key == key)
    if lock:
        stmt = stmt.with_for_update()
    experiment: Experiment | None = await session.scalar(stmt)
    if experiment is None:
        raise ExperimentError(f"no experiment {key!r}")
    return experiment


async def create_experiment(
    session: AsyncSession, data: ExperimentInput, *, actor: str
) -> Experiment:
    if await get_experiment(session, data.key) is not None:
        raise ExperimentError(f"experiment {data.key!r} already exists")
    experiment = Experiment(
        key=data.key,
        name=data.name,
        hypothesis=data.hypothesis,
        primary_metric=data.primary_metric,
        coverage=data.coverage,
        seed=data.seed,
        hash_version=data.hash_version,
        status=ExperimentStatus.DRAFT.value,
        variants=[
            ExperimentVariant(key=v.key, name=v.name or v.key, weight=v.weight, position=i)
            for i, v in enumerate(data.variants)
        ],
        funnels=[ExperimentFunnel(name=f.name, steps=list(f.steps)) for f in data.funnels],
    )
    session.add(experiment)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="experiment",
        entity_id=data.key,
        before=None,
        after=snapshot(experiment),
    )
    return experiment


TRANSITIONS: dict[str, set[str]] = {
    ExperimentStatus.DRAFT: {ExperimentStatus.RUNNING, ExperimentStatus.STOPPED},
    ExperimentStatus.RUNNING: {ExperimentStatus.PAUSED, ExperimentStatus.STOPPED},
    ExperimentStatus.PAUSED: {ExperimentStatus.RUNNING, ExperimentStatus.STOPPED},
    ExperimentStatus.STOPPED: set(),
}


async def set_status(
    session: AsyncSession, key: str, status: ExperimentStatus, *, actor: str
) -> Experiment:
    experiment = await _require(session, key)
    allowed = TRANSITIONS[ExperimentStatus(experiment.status)]
    if status not in allowed:
        choices = ", ".join(sorted(allowed)) or "nothing (stopped is final)"
        raise ExperimentError(
            f"{key} is {experiment.status}; it can go to {choices}, not {status.value}"
        )
    before = snapshot(experiment)
    now = await session.scalar(select(text("now()")))
    experiment.status = status.value
    experiment.updated_at = now
    if status == ExperimentStatus.RUNNING and experiment.started_at is None:
        experiment.started_at = now
    if status == ExperimentStatus.STOPPED:
        experiment.stopped_at = now
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"status:{status.value}",
        entity="experiment",
        entity_id=key,
        before=before,
        after=snapshot(experiment),
    )
    return experiment


async def set_weights(
    session: AsyncSession, key: str, weights: dict[str, float], *, actor: str
) -> Experiment:
    """New weights for every variant (summing to 1). Units already assigned keep their variant."""
    experiment = await _require(session, key)
    if experiment.status == ExperimentStatus.STOPPED:
        raise ExperimentError(f"{key} is stopped; its weights are final")
    known = {v.key for v in experiment.variants}
    if set(weights) != known:
        raise ExperimentError(f"give a weight for each of {', '.join(sorted(known))}")
    check_weights(list(weights.values()))
    before = snapshot(experiment)
    for variant in experiment.variants:
        variant.weight = weights[variant.key]
    experiment.updated_at = await session.scalar(select(text("now()")))
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="weights",
        entity="experiment",
        entity_id=key,
        before=before,
        after=snapshot(experiment),
    )
    return experiment


async def add_variant(
    session: AsyncSession, key: str, variant_key: str, name: str = "", *, actor: str
) -> Experiment:
    """Add an arm to a draft; weights are rebalanced to an equal split (edit them after)."""
    experiment = await _require(session, key)
    if experiment.status != ExperimentStatus.DRAFT:
        raise ExperimentError(f"{key} is {experiment.status}; variants are added while draft")
    checked = VariantInput(key=variant_key, name=name, weight=0)
    if any(v.key == checked.key for v in experiment.variants):
        raise ExperimentError(f"{key} already has a variant {checked.key!r}")
    before = snapshot(experiment)
    experiment.variants.append(
        ExperimentVariant(
            key=checked.key,
            name=checked.name or checked.key,
            weight=0.0,
            position=len(experiment.variants),
        )
    )
    count = len(experiment.variants)
    for variant in experiment.variants:
        variant.weight = 1.0 / count
    experiment.updated_at = await session.scalar(select(text("now()")))
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="add_variant",
        entity="experiment",
        entity_id=key,
        before=before,
        after=snapshot(experiment),
    )
    return experiment


# --- assignment --------------------------------------------------------------------------------


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


# --- events ------------------------------------------------------------------------------------

# One statement per batch: the batch arrives as one JSON array, Postgres unpacks it, corrects the
# clock skew, looks up the unit's assignments and skips event ids it already has.
#
# event_log is partitioned by day of occurred_at, so its key is (event_id, occurred_at) and
# cannot by itself catch a resend whose skew (hence occurred_at) differs. The NOT EXISTS looks
# for the id within DEDUPE_WINDOW of the new time: an index probe in at most three daily
# partitions (run-time pruning). A resend whose corrected time moved by more than a day (the
# device's clock jumped between sends) is stored twice; exact repeats racing each other are
# caught by the key.
DEDUPE_WINDOW = timedelta(days=1)
_INSERT_EVENTS_SQL = """
WITH batch AS (
    SELECT DISTINCT ON (e.event_id) e.event_id, e.unit_id, e.name, e.ts, e.properties,
           e.ts + make_interval(secs => $2) AS occurred_at
    FROM jsonb_to_recordset($1::jsonb)
        AS e(event_id uuid, unit_id text, name text, ts timestamptz, properties jsonb)
), enrichment AS (
    -- once per unit of the batch (an app's batch usually holds one device's events)
    SELECT s.unit_id, jsonb_object_agg(x.key, s.variant_key) AS assignments
    FROM (SELECT DISTINCT unit_id FROM batch) u
    JOIN assignment s ON s.unit_id = u.unit_id
    JOIN experiment x ON x.id = s.experiment_id
    GROUP BY s.unit_id
), ins AS (
    INSERT INTO event_log
        (event_id, unit_id, name, occurred_at, client_ts, received_at, properties, assignments)
    SELECT b.event_id, b.unit_id, b.name, b.occurred_at, b.ts, $3,
           b.properties, COALESCE(n.assignments, '{}'::jsonb)
    FROM batch b LEFT JOIN enrichment n ON n.unit_id = b.unit_id
    WHERE NOT EXISTS (
        SELECT 1 FROM event_log o
        WHERE o.event_id = b.event_id
          AND o.occurred_at >= b.occurred_at - interval '1 day'
          AND o.occurred_at <= b.occurred_at + interval '1 day'
    )
    ON CONFLICT (event_id, occurred_at) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM ins
"""


_INDEX_PROBES_ONLY = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
    "SET LOCAL enable_seqscan = off"
)


async def insert_events(
    conn: Conn, batch_json: bytes | str, skew_s: float, received_at: datetime
) -> int:
    """Store a validated batch (a JSON array of {event_id, unit_id, name, ts, properties}).

    Returns how many were new; the rest were duplicates of stored event ids. Commits (one
    statement in its own transaction), unless the caller holds one.
    """
    payload = batch_json.decode() if isinstance(batch_json, bytes) else batch_json
    # Its own short transaction (a savepoint inside a caller's): the dedupe must probe the
    # primary key, never hash a whole partition. Today's partition fills faster than
    # autovacuum analyzes it, and with "empty" statistics the planner would otherwise pick a
    # hash anti-join over a sequential scan of it (measured: 10x slower ingestion).
    async with conn.transaction():
        await conn.execute(_INDEX_PROBES_ONLY)
        stored = await conn.fetchval(_INSERT_EVENTS_SQL, payload, skew_s, received_at)
    return int(stored or 0)


# --- rollups -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    days: int
    end: date  # inclusive, UTC

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days - 1)

    @property
    def start_ts(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_ts(self) -> datetime:
        nxt = self.end + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC)


async def lock_rollups(session: AsyncSession) -> None:
    """Serialise rollup jobs (CLI and engine) for the rest of the transaction."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ROLLUP_LOCK})
    # Rollups scan and join whole windows; the planner's guess for JSONB `?` filters is tiny and
    # a nested loop over two large sides then costs minutes. Hash and merge joins only.
    await session.execute(text("SET LOCAL enable_nestloop = off"))


async def touched_days(session: AsyncSession, window: Window, since: datetime) -> list[date]:
    rows = await session.execute(
        text(
            "SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date AS day FROM event_log "
            "WHERE received_at > :since AND occurred_at >= :start AND occurred_at < :end "
            "ORDER BY day"
        ),
        {"since": since, "start": window.start_ts, "end": window.end_ts},
    )
    return [r.day for r in rows]


async def touched_experiments(session: AsyncSession, since: datetime) -> set[str]:
    """Keys of experiments with events or assignments received after `since`."""
    rows = await session.execute(
        text(
            "SELECT DISTINCT jsonb_object_keys(assignments) AS key FROM event_log "
            "WHERE received_at > :since "
            "UNION SELECT x.key FROM assignment s JOIN experiment x ON x.id = s.experiment_id "
            "WHERE s.assigned_at > :since"
        ),
        {"since": since},
    )
    return {r.key for r in rows}


async def rollup_daily_days(session: AsyncSession, days: Sequence[date]) -> int:
    """Recompute the daily rows of the given days. Returns rows inserted, changed or deleted."""
    if not days:
        return 0
    params = {"days": list(days)}
    upserted = await session.execute(
        text(
            """
            WITH fresh AS (
                SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, name AS event_name,
                       count(*) AS events, count(DISTINCT unit_id) AS units
                FROM event_log
                WHERE occurred_at >= (SELECT min(d) FROM unnest(CAST(:days AS date[])) d)
                  AND occurred_at < (SELECT max(d) + 1 FROM unnest(CAST(:days AS date[])) d)
                  AND (occurred_at AT TIME ZONE 'UTC')::date = ANY(CAST(:days AS date[]))
                GROUP BY 1, 2
            ), up AS (
                INSERT INTO rollup_daily AS r (day, event_name, events, units)
                SELECT day, event_name, events, units FROM fresh
                ON CONFLICT (day, event_name) DO UPDATE
                    SET events = EXCLUDED.events, units = EXCLUDED.units
                    WHERE (r.events, r.units) IS DISTINCT FROM (EXCLUDED.events, EXCLUDED.units)
                RETURNING 1
            ), gone AS (
                DELETE FROM rollup_daily r
                WHERE r.day = ANY(CAST(:days AS date[]))
                  AND NOT EXISTS (
                      SELECT 1 FROM fresh f WHERE f.day = r.day AND f.event_name = r.event_name
                  )
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS n
            """
        ),
        params,
    )
    return int(upserted.scalar_one())


@dataclass(frozen=True, slots=True)
class RollupExperiment:
    id: int
    key: str
    primary_metric: str
    variant_keys: tuple[str, ...]
    funnels: tuple[tuple[str, tuple[str, ...]], ...]


async def rollup_experiments_list(session: AsyncSession) -> list[RollupExperiment]:
    """Every experiment that has run (drafts have no data)."""
    rows = await session.scalars(
        select(Experiment)
        .where(Experiment.status != ExperimentStatus.DRAFT)
        .order_by(Experiment.id)
    )
    return [
        RollupExperiment(
            e.id,
            e.key,
            e.primary_metric,
            tuple(v.key for v in e.variants),
            tuple((f.name, tuple(f.steps)) for f in e.funnels),
        )
        for e in rows
    ]


_FUNNEL_TAIL = """, counted AS (__COUNTED__),
        grid AS (
            SELECT k.variant_key, s.step, s.step_name
            FROM unnest(CAST(:variants AS text[])) AS k(variant_key)
            CROSS JOIN unnest(CAST(:steps AS text[])) WITH ORDINALITY AS s(step_name, step)
        ), fresh AS (
            SELECT CAST(:days AS integer) AS window_days, CAST(:id AS bigint) AS experiment_id,
                   CAST(:funnel AS text) AS funnel_name, g.variant_key,
                   CAST(g.step AS integer) AS step, CAST(:window_end AS date) AS window_end,
                   g.step_name, COALESCE(c.units, 0) AS units
            FROM grid g LEFT JOIN counted c ON c.variant_key = g.variant_key AND c.step = g.step
        ), up AS (
            INSERT INTO rollup_funnel AS r
                (window_days, experiment_id, funnel_name, variant_key, step, window_end,
                 step_name, units)
            SELECT * FROM fresh
            ON CONFLICT (window_days, experiment_id, funnel_name, variant_key, step) DO UPDATE
                SET window_end = EXCLUDED.window_end, step_name = EXCLUDED.step_name,
                    units = EXCLUDED.units
                WHERE (r.window_end, r.step_name, r.units) IS DISTINCT FROM
                      (EXCLUDED.window_end, EXCLUDED.step_name, EXCLUDED.units)
            RETURNING 1
        ), gone AS (
            DELETE FROM rollup_funnel r
            WHERE r.window_days = :days AND r.experiment_id = :id AND r.funnel_name = :funnel
              AND NOT EXISTS (
                  SELECT 1 FROM fresh f
                  WHERE f.variant_key = r.variant_key AND f.step = r.step
              )
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM up) + (SELECT count(*) FROM gone) AS n"""


def _funnel_sql(steps: int) -> str:
    """Step k counts units whose first step-k event comes at or after their step k-1."""
    parts = [
        "WITH ev AS (SELECT unit_id, assignments ->> :key AS variant_key, name, occurred_at "
        "FROM event_log WHERE occurred_at >= :start AND occurred_at < :end "
        "AND assignments ? :key AND name = ANY(CAST(:steps AS text[])))",
        ", s1 AS (SELECT unit_id, variant_key, min(occurred_at) AS t FROM ev "
        "WHERE name = :step1 GROUP BY unit_id, variant_key)",
    ]
    for k in range(2, steps + 1):
        parts.append(
            f", s{k} AS (SELECT e.unit_id, e.variant_key, min(e.occurred_at) AS t FROM ev e "  # noqa: S608
            f"JOIN s{k - 1} p ON p.unit_id = e.unit_id AND p.variant_key = e.variant_key "
            f"WHERE e.name = :step{k} AND e.occurred_at >= p.t "
            "GROUP BY e.unit_id, e.variant_key)"
        )
    counted = " UNION ALL ".join(
        f"SELECT variant_key, {k} AS step, count(*) AS units FROM s{k} GROUP BY variant_key"  # noqa: S608
        for k in range(1, steps + 1)
    )
    # Only step numbers are formatted in; every value is a bound parameter.
    parts.append(_FUNNEL_TAIL.replace("__COUNTED__", counted))
    return "\n".join(parts)


async def rollup_funnel(
    session: AsyncSession,
    exp: RollupExperiment,
    funnel: str,
    steps: Sequence[str],
    window: Window,
) -> int:
    params: dict[str, Any] = {
        "id": exp.id,
        "key": exp.key,
        "funnel": funnel,
        "steps": list(steps),
        "variants": list(exp.variant_keys),
        "days": window.days,
        "window_end": window.end,
        "start": window.start_ts,
        "end": window.end_ts,
    }
    params.update({f"step{k}": name for k, name in enumerate(steps, start=1)})
    result = await session.execute(text(_funnel_sql(len(steps))), params)
    return int(result.scalar_one())


async def prune_funnels(session: AsyncSession, window_days: int) -> int:
    """Drop funnel rows of funnels that no longer exist (renamed or removed)."""
    result = await session.execute(
        text(
            "DELETE FROM rollup_funnel r WHERE r.window_days = :days AND NOT EXISTS ("
            "SELECT 1 FROM experiment_funnel f WHERE f.experiment_id = r.experiment_id "
            "AND f.name = r.funnel_name)"
        ),
        {"days": window_days},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def checksums(session: AsyncSession) -> dict[str, str]:
    """md5 of each rollup table's rows in key order: equal checksums, identical tables."""
    orders = {
        "rollup_daily": "day, event_name",
        "rollup_experiment": "window_days, experiment_id, variant_key",
        "rollup_funnel": "window_days, experiment_id, funnel_name, variant_key, step",
    }
    out = {}
    for table, order in orders.items():
        # Fixed table and column names from the dict above; nothing user-given is formatted in.
        sql = (
            f"SELECT md5(COALESCE(string_agg(t::text, E'\\n' ORDER BY {order}), '')) FROM {table} t"  # noqa: S608
        )
        value = await session.scalar(text(sql))
        out[table] = str(value)
    return out


async def start_run(
    session: AsyncSession, job: str, window: Window, *, incremental: bool, trigger: str
) -> RollupRun:
    run = RollupRun(
        job=job,
        window_days=window.days,
        window_start=window.start,
        window_end=window.end,
        incremental=incremental,
        status="running",
        trigger=trigger,
    )
    session.add(run)
    await session.flush()
    return run


async def previous_run(session: AsyncSession, job: str, window: Window) -> RollupRun | None:
    """The last successful run of the same job over the same window (same days, same end)."""
    run: RollupRun | None = await session.scalar(
        select(RollupRun)
        .where(
            RollupRun.job == job,
            RollupRun.window_days == window.days,
            RollupRun.window_end == window.end,
            RollupRun.status == "ok",
        )
        .order_by(RollupRun.id.desc())
        .limit(1)
    )
    return run


async def recent_runs(session: AsyncSession, limit: int = 50) -> list[RollupRun]:
    rows = await session.scalars(select(RollupRun).order_by(RollupRun.id.desc()).limit(limit))
    return list(rows)


async def db_now(session: AsyncSession) -> datetime:
    value: datetime = await session.scalar(select(text("now()")))
    return value


# --- reads (rollup tables only) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyRow:
    day: date
    event_name: str
    events: int
    units: int


async def read_daily(session: AsyncSession, start: date, end: date) -> list[DailyRow]:
    rows = await session.execute(
        text(
            "SELECT day, event_name, events, units FROM rollup_daily "
            "WHERE day >= :start AND day <= :end ORDER BY day, event_name"
        ),
        {"start": start, "end": end},
    )
    return [DailyRow(r.day, r.event_name, r.events, r.units) for r in rows]


@dataclass(frozen=True, slots=True)
class VariantRow:
    variant_key: str
    position: int
    weight: float
    window_end: date
    units: int
    conversions: int
    events: int


async def read_experiment_rollup(
    session: AsyncSession, experiment_id: int, window_days: int
) -> list[VariantRow]:
    rows = await session.execute(
        text(
            "SELECT r.variant_key, COALESCE(v.position, 1000) AS position, "
            "COALESCE(v.weight, 0) AS weight, r.window_end, r.units, r.conversions, r.events "
            "FROM rollup_experiment r LEFT JOIN experiment_variant v "
            "ON v.experiment_id = r.experiment_id AND v.key = r.variant_key "
            "WHERE r.experiment_id = :id AND r.window_days = :days "
            "ORDER BY position, r.variant_key"
        ),
        {"id": experiment_id, "days": window_days},
    )
    return [
        VariantRow(
            r.variant_key, r.position, r.weight, r.window_end, r.units, r.conversions, r.events
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class FunnelRow:
    experiment_key: str
    funnel_name: str
    variant_key: str
    step: int
    step_name: str
    units: int
    window_end: date


async def read_funnels(
    session: AsyncSession,
    window_days: int,
    funnel_name: str | None = None,
    experiment_id: int | None = None,
) -> list[FunnelRow]:
    rows = await session.execute(
        text(
            "SELECT x.key AS experiment_key, r.funnel_name, r.variant_key, r.step, r.step_name, "
            "r.units, r.window_end FROM rollup_funnel r "
            "JOIN experiment x ON x.id = r.experiment_id "
            "LEFT JOIN experiment_variant v ON v.experiment_id = r.experiment_id "
            "AND v.key = r.variant_key "
            "WHERE r.window_days = :days "
            "AND (CAST(:funnel AS text) IS NULL OR r.funnel_name = :funnel) "
            "AND (CAST(:exp AS bigint) IS NULL OR r.experiment_id = :exp) "
            "ORDER BY x.key, r.funnel_name, COALESCE(v.position, 1000), r.variant_key, r.step"
        ),
        {"days": window_days, "funnel": funnel_name, "exp": experiment_id},
    )
    return [
        FunnelRow(
            r.experiment_key,
            r.funnel_name,
            r.variant_key,
            r.step,
            r.step_name,
            r.units,
            r.window_end,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class Summary:
    experiments: dict[str, int]
    days: int
    first_day: date | None
    last_day: date | None
    events: int
    event_names: int
    last_rollup_at: datetime | None


async def read_summary(session: AsyncSession) -> Summary:
    counts = await session.execute(
        text("SELECT status, count(*) AS n FROM experiment GROUP BY status ORDER BY status")
    )
    daily = (
        await session.execute(
            text(
                "SELECT count(DISTINCT day) AS days, min(day) AS first, max(day) AS last, "
                "COALESCE(sum(events), 0) AS events, count(DISTINCT event_name) AS names "
                "FROM rollup_daily"
            )
        )
    ).one()
    last = await session.scalar(
        text("SELECT max(finished_at) FROM rollup_runs WHERE status = 'ok'")
    )
    return Summary(
        experiments={r.status: r.n for r in counts},
        days=daily.days,
        first_day=daily.first,
        last_day=daily.last,
        events=int(daily.events),
        event_names=daily.names,
        last_rollup_at=last,
    )


async def experiment_traffic(session: AsyncSession) -> dict[int, int]:
    """Assigned units per experiment (for the console's list)."""
    rows = await session.execute(
        text("SELECT experiment_id, count(*) AS n FROM assignment GROUP BY experiment_id")
    )
    return {r.experiment_id: r.n for r in rows}
