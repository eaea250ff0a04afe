"""Per-unit funnel progress (`rollup_funnel_unit`): built from a window's events, patched by unit.

A funnel is ordered steps. For one (unit, variant) of an experiment — the variant is the one the
event carries in its `assignments` — with E_k its step-k event times in the window:
t_1 = min E_1 and t_k = min { e in E_k : e >= t_(k-1) }; the unit reached step k when t_k
exists. A row keeps `reached` and the chain times `reached_at` = t_1 … t_reached; a unit that
never reached step 1 has no row.

Invariant: within one window events are only added (late ones), and the raw events from the
retention horizon on stay (the caller never patches from before it). Then every t_k can only
move earlier, so with t0 the earliest of a unit's new events that can move its chain (below):
its chain times before t0 stay, and the step after them has no event between its previous time
and t0 (else that event would have been its time already). Hence a unit's new progress is its
stored prefix before t0, chained on over its raw events at and after t0 (`merge`): a late event
re-chains only its unit, and the result equals a chain over all the window's raw events
(`stage`). Only a new event that can move the chain alone re-chains its unit: a step-1 event of
a unit without progress, an event of a reached step before that step's time, one of the next
step at or after the last chain time. Any other can only matter once one of those moved the
chain to at or before it, and it is then among the raw events read from t0 on.

Costs: a rebuild (`stage` on a share of the units, on several sessions at once, then
`apply_stage`; a first build writes from the sessions directly) is one scan of the window's
events per share for every funnel at once (a hash join of event names on the funnels' step
names, one JSONB lookup per candidate pair), a hash aggregate per step over the candidates and
one row per (funnel, unit). `merge` reads the events received since a watermark (BRIN on
received_at), the rows of their units, and the raw events of the units it re-chains from their
earliest new event's day on (one scan of those days' partitions). Both write only rows that
change (a re-run writes nothing); neither commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The funnels of one statement, one row per step (fid numbers the funnels of the statement).
_FUNNELS_CTE = """
f AS (
    SELECT * FROM unnest(CAST(:f_ids AS integer[]), CAST(:f_exps AS bigint[]),
                         CAST(:f_funnels AS text[]), CAST(:f_keys AS text[]),
                         CAST(:f_steps AS integer[]), CAST(:f_names AS text[]))
        AS f(fid, experiment_id, funnel_name, key, step, name)
), fl AS (
    SELECT DISTINCT fid, experiment_id, funnel_name FROM f
)"""

# Candidate events: a step's name, and the funnel's experiment in the event's assignments (a
# JSON null variant is no variant: it never matched a variant row of the counts).
_EVENTS = """
    SELECT f.fid, e.unit_id COLLATE "C" AS unit_id,
           (e.assignments ->> f.key) COLLATE "C" AS variant_key, f.step, e.occurred_at AS t
    FROM event_log e JOIN f ON f.name = e.name
    WHERE {where} AND e.name = ANY(CAST(:names AS text[]))
      AND e.assignments ->> f.key IS NOT NULL"""


def _chain(steps: int, *, seeded: bool) -> str:
    """CTEs from `ev` (fid, unit_id, variant_key, step, t) to `fresh`, the rows to store.

    Hash joins and hash aggregates only (no sort of the window's events): step 1's time per
    unit, then each step's from the previous one's. `seeded`: units in `st` keep their first
    `pre` chain times (`at`), and `ev` holds only their later steps' events."""
    parts = []
    for k in range(1, steps + 1):
        # Only step numbers are formatted in; every value is a bound parameter.
        seed = (
            f"SELECT fid, unit_id, variant_key, at[{k}] AS t FROM st WHERE pre >= {k} UNION ALL "  # noqa: S608
            if seeded
            else ""
        )
        chained = (
            "SELECT fid, unit_id, variant_key, min(t) AS t FROM ev WHERE step = 1 GROUP BY 1, 2, 3"
            if k == 1
            else f"SELECT e.fid, e.unit_id, e.variant_key, min(e.t) AS t FROM ev e "  # noqa: S608
            f"JOIN s{k - 1} p ON p.fid = e.fid AND p.unit_id = e.unit_id "
            f"AND p.variant_key = e.variant_key WHERE e.step = {k} AND e.t >= p.t "
            "GROUP BY 1, 2, 3"
        )
        parts.append(f", s{k} AS ({seed}{chained})")
    times = ", ".join(f"s{k}.t" for k in range(1, steps + 1))
    joins = " ".join(
        f"LEFT JOIN s{k} USING (fid, unit_id, variant_key)" for k in range(2, steps + 1)
    )
    # Chain times only grow along the steps, so the times that exist are a prefix.
    parts.append(
        ", fresh AS (SELECT fl.experiment_id, fl.funnel_name, unit_id, variant_key, "  # noqa: S608
        f"CAST(num_nonnulls({times}) AS smallint) AS reached, "
        f"array_remove(ARRAY[{times}], NULL) AS reached_at "
        f"FROM s1 {joins} JOIN fl USING (fid))"
    )
    return "\n".join(parts)


# The re-chained units compared with their stored rows by one hash join, then only the
# differences are written (an ON CONFLICT probe per unit cost 10 s of a 1M-event full run that
# changed nothing).
_MERGE_DIFF = """
, cur AS (
    SELECT r.experiment_id, r.funnel_name, r.unit_id, r.variant_key, r.reached, r.reached_at
    FROM rollup_funnel_unit r JOIN fl USING (experiment_id, funnel_name)
    WHERE r.window_days = :wd
      AND (fl.fid, r.unit_id, r.variant_key) IN (SELECT fid, unit_id, variant_key FROM st)
), diff AS (
    SELECT n.*, COALESCE(c.reached, 0) AS was FROM fresh n LEFT JOIN cur c
        USING (experiment_id, funnel_name, unit_id, variant_key)
    WHERE c.unit_id IS NULL OR (c.reached, c.reached_at) IS DISTINCT FROM
                               (n.reached, n.reached_at)
), up AS (
    INSERT INTO rollup_funnel_unit AS r
        (window_days, experiment_id, funnel_name, unit_id, variant_key, reached, reached_at)
    SELECT :wd, experiment_id, funnel_name, unit_id, variant_key, reached, reached_at
    FROM diff
    ON CONFLICT (window_days, experiment_id, funnel_name, unit_id, variant_key) DO UPDATE
        SET reached = EXCLUDED.reached, reached_at = EXCLUDED.reached_at
    RETURNING 1
)"""

# A rebuild compares each share's rows with the state in its own session (one hash full join)
# and stages the differences: a row to add (`was` NULL), to change, or (reached NULL) to
# delete. The job's transaction then only writes them (at 10M events the comparison is 1.5 s
# of one core).
_PAIRS = """
, cur AS (
    SELECT r.experiment_id, r.funnel_name, r.unit_id, r.variant_key, r.reached, r.reached_at
    FROM rollup_funnel_unit r JOIN fl USING (experiment_id, funnel_name)
    WHERE r.window_days = :wd AND (hashtext(r.unit_id) & 2147483647) % :shares = :share
), pair AS MATERIALIZED (
    SELECT experiment_id, funnel_name, unit_id, variant_key, n.reached, n.reached_at,
           c.reached AS was, c.reached_at AS was_at
    FROM fresh n FULL JOIN cur c USING (experiment_id, funnel_name, unit_id, variant_key)
    WHERE (n.reached, n.reached_at) IS DISTINCT FROM (c.reached, c.reached_at)
)"""

_STAGE_TAIL = """
, staged AS (
    INSERT INTO rollup_funnel_stage
        (run_id, experiment_id, funnel_name, unit_id, variant_key, reached, reached_at, was)
    SELECT :run, experiment_id, funnel_name, unit_id, variant_key, reached, reached_at, was
    FROM pair
    RETURNING 1
)
SELECT (SELECT count(*) FROM staged) AS written, (SELECT count(*) FROM fresh) AS units
"""

# New rows are plain inserts (the readers saw no row, and no one else writes the state while
# the job's lock is held), in the index's key order (funnel names compared bytewise: cheaper,
# and only whole funnels' blocks can come out in another order). At 10M events a first build's
# 400,000 rows take 2.8 s: 1.0 s of it the experiment foreign key's checks, 0.9 s the sort,
# which the index then repays (unsorted, the inserts take as long); as ON CONFLICT upserts in
# hash order they took 6.1 s.
_WRITES = """
, added AS (
    INSERT INTO rollup_funnel_unit
        (window_days, experiment_id, funnel_name, unit_id, variant_key, reached, reached_at)
    SELECT :wd, experiment_id, funnel_name, unit_id, variant_key, reached, reached_at
    FROM {source} WHERE was IS NULL
    ORDER BY experiment_id, funnel_name COLLATE "C", unit_id, variant_key
    RETURNING 1
), changed AS (
    UPDATE rollup_funnel_unit r SET reached = g.reached, reached_at = g.reached_at
    FROM {source} g
    WHERE g.was IS NOT NULL AND g.reached IS NOT NULL AND r.window_days = :wd
      AND r.experiment_id = g.experiment_id AND r.funnel_name = g.funnel_name
      AND r.unit_id = g.unit_id AND r.variant_key = g.variant_key
    RETURNING 1
), gone AS (
    DELETE FROM rollup_funnel_unit r USING {source} g
    WHERE g.reached IS NULL AND r.window_days = :wd AND r.experiment_id = g.experiment_id
      AND r.funnel_name = g.funnel_name AND r.unit_id = g.unit_id
      AND r.variant_key = g.variant_key
    RETURNING 1
)
SELECT (SELECT count(*) FROM added) + (SELECT count(*) FROM changed)
     + (SELECT count(*) FROM gone) AS written{units}
"""

_STAGED = """
WITH staged AS (
    SELECT experiment_id, funnel_name, unit_id, variant_key, reached, reached_at, was
    FROM rollup_funnel_stage WHERE run_id = :run
)"""
_APPLY_SQL = _STAGED + _WRITES.format(source="staged", units="")

# A funnel never counted for this window: its share's rows go straight into the state.
_DIRECT_TAIL = _WRITES.format(source="pair", units=", (SELECT count(*) FROM fresh) AS units")

# Most late events of a busy window cannot move their unit's chain alone (a step already
# reached, at or after its time, say): only units with one that can are re-chained (`st`; see
# the module's docstring), keeping their chain times before its time (t0) and going on from
# the raw events at and after t0.
_MERGE_SOURCE = """
, arrived AS MATERIALIZED ({events}
), touched AS MATERIALIZED (
    SELECT n.fid, n.unit_id, n.variant_key, min(n.t) AS t0,
           COALESCE(u.reached_at, '{{}}') AS at
    FROM arrived n
    JOIN fl ON fl.fid = n.fid
    LEFT JOIN rollup_funnel_unit u ON u.window_days = :wd
         AND u.experiment_id = fl.experiment_id AND u.funnel_name = fl.funnel_name
         AND u.unit_id = n.unit_id AND u.variant_key = n.variant_key
    WHERE (u.unit_id IS NULL AND n.step = 1)
       OR (n.step <= u.reached AND n.t < u.reached_at[n.step])
       OR (n.step = u.reached + 1 AND (u.reached = 0 OR n.t >= u.reached_at[u.reached]))
    GROUP BY n.fid, n.unit_id, n.variant_key, u.reached_at
), st AS MATERIALIZED (
    SELECT u.*, CAST((SELECT count(*) FROM unnest(u.at) AS x(t) WHERE x.t < u.t0) AS integer)
           AS pre
    FROM touched u
), ev AS (
    SELECT f.fid, e.unit_id COLLATE "C" AS unit_id,
           (e.assignments ->> f.key) COLLATE "C" AS variant_key, f.step, e.occurred_at AS t
    FROM event_log e JOIN f ON f.name = e.name
    JOIN st s ON s.fid = f.fid AND s.unit_id = e.unit_id COLLATE "C"
         AND s.variant_key = (e.assignments ->> f.key) COLLATE "C"
    WHERE e.occurred_at >= (SELECT min(t0) FROM st) AND e.occurred_at < :end
      AND e.name = ANY(CAST(:names AS text[]))
      AND e.occurred_at >= s.t0 AND f.step > s.pre
)"""

# Progress only grows when events are added: each changed unit moves from `was` steps to
# `reached`, which is all the funnel's counts need to know (no recount of the state).
_MERGE_TAIL = """
, moved AS (
    SELECT experiment_id, funnel_name, variant_key, was, reached, count(*) AS n
    FROM diff WHERE reached <> was GROUP BY 1, 2, 3, 4, 5
)
SELECT (SELECT count(*) FROM up) AS written, (SELECT count(*) FROM st) AS units,
       (SELECT COALESCE(json_agg(m), '[]') FROM moved m)::text AS moved
"""


@dataclass(frozen=True, slots=True)
class FunnelDef:
    """A funnel as the state statements read it."""

    experiment_id: int
    key: str  # the experiment's key, as in events' `assignments`
    name: str
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Move:
    """`units` of one funnel and variant went from `was` steps reached to `reached`."""

    experiment_id: int
    funnel_name: str
    variant_key: str
    was: int
    reached: int
    units: int


@dataclass(frozen=True, slots=True)
class Patched:
    written: int  # state rows inserted, changed or deleted
    units: int  # (funnel, unit) chains computed
    moves: tuple[Move, ...] = ()


async def _hash_joins_only(session: AsyncSession) -> None:
    # The chain joins CTEs the planner estimates at one row: it then picks merge joins that
    # sort the window's events by text keys (measured 36 s against 13 s at 1M events), and
    # group aggregates over sorts that spill (at 10M events: 36.8 s against 47.1 s for the
    # full state, EXPLAIN ANALYZE). Sorts inside an aggregate (ORDER BY) are not plan sorts.
    await session.execute(text("SET LOCAL enable_mergejoin = off"))
    await session.execute(text("SET LOCAL enable_sort = off"))


def _funnel_params(funnels: Sequence[FunnelDef]) -> dict[str, Any]:
    rows = [
        (fid, f.experiment_id, f.name, f.key, step, name)
        for fid, f in enumerate(funnels)
        for step, name in enumerate(f.steps, start=1)
    ]
    return {
        "f_ids": [r[0] for r in rows],
        "f_exps": [r[1] for r in rows],
        "f_funnels": [r[2] for r in rows],
        "f_keys": [r[3] for r in rows],
        "f_steps": [r[4] for r in rows],
        "f_names": [r[5] for r in rows],
        "names": sorted({r[5] for r in rows}),
    }


async def stage(
    session: AsyncSession,
    run_id: int,
    window_days: int,
    funnels: Sequence[FunnelDef],
    span: tuple[datetime, datetime],
    share: tuple[int, int],
    *,
    direct: bool = False,
) -> Patched:
    """Chain the units of `share` = (k, n), the k-th of n by a hash of the unit id, over the
    raw events in `span` = [start, end), for every funnel at once, and stage under `run_id`
    the rows that differ from the state (`apply_stage` writes them). `direct`: write them into
    the state instead, for funnels never counted for this window (see `_rebuild`).

    The shares go on n sessions at once: a statement runs on one core of Postgres, and the
    chain's joins and aggregates are most of the funnels' cost (each share scans the window's
    events: 1.6 s of its 8 s at 10M events). Returns the rows written and units chained."""
    if not funnels:
        return Patched(0, 0)
    steps = max(len(f.steps) for f in funnels)
    where = (
        "e.occurred_at >= :start AND e.occurred_at < :end "
        "AND (hashtext(e.unit_id) & 2147483647) % :shares = :share"
    )
    tail = _DIRECT_TAIL if direct else _STAGE_TAIL
    sql = (
        f"WITH {_FUNNELS_CTE}, ev AS ({_EVENTS.format(where=where)})"
        f"{_chain(steps, seeded=False)}{_PAIRS}{tail}"
    )
    params = {
        **_funnel_params(funnels),
        "wd": window_days,
        "start": span[0],
        "end": span[1],
        "share": share[0],
        "shares": share[1],
    }
    if not direct:
        params["run"] = run_id
    await _hash_joins_only(session)
    row = (await session.execute(text(sql), params)).one()
    return Patched(int(row.written), int(row.units))


async def apply_stage(session: AsyncSession, window_days: int, run_id: int) -> int:
    """Write the differences staged under `run_id` into the state. Returns the state rows
    written."""
    written = await session.scalar(text(_APPLY_SQL), {"wd": window_days, "run": run_id})
    return int(written or 0)


async def drop_staged(session: AsyncSession, run_id: int) -> None:
    """Drop this run's staged rows and any that an earlier, failed run's sessions committed
    before it failed (run ids grow; one funnels run at a time, whatever its window: the caller
    holds the job's lock, taken before its readers start)."""
    await session.execute(
        text("DELETE FROM rollup_funnel_stage WHERE run_id <= :run"), {"run": run_id}
    )


async def merge(
    session: AsyncSession,
    window_days: int,
    funnels: Sequence[FunnelDef],
    start: datetime,
    end: datetime,
    since: datetime | None,
) -> Patched:
    """Fold into the state of `funnels` the window's events received after `since` (or, with
    `since` None, every event in [start, end)): only the units those events can move are
    re-chained, from their stored chain times and their raw events from the new ones on."""
    if not funnels:
        return Patched(0, 0)
    steps = max(len(f.steps) for f in funnels)
    where = "e.occurred_at >= :start AND e.occurred_at < :end"
    if since is not None:
        where = f"e.received_at > :since AND {where}"
    source = _MERGE_SOURCE.format(events=_EVENTS.format(where=where))
    sql = f"WITH {_FUNNELS_CTE}{source}{_chain(steps, seeded=True)}{_MERGE_DIFF}{_MERGE_TAIL}"
    params = {**_funnel_params(funnels), "wd": window_days, "start": start, "end": end}
    if since is not None:
        params["since"] = since
    await _hash_joins_only(session)
    row = (await session.execute(text(sql), params)).one()
    moves = tuple(
        Move(m["experiment_id"], m["funnel_name"], m["variant_key"], m["was"], m["reached"], m["n"])
        for m in json.loads(row.moved)
    )
    return Patched(int(row.written), int(row.units), moves)


async def reached_counts(
    session: AsyncSession, window_days: int, experiment_ids: Sequence[int]
) -> dict[tuple[int, str], dict[tuple[str, int], int]]:
    """Per (experiment, funnel): units per (variant, step reached), from the state alone."""
    rows = await session.execute(
        text(
            "SELECT experiment_id, funnel_name, variant_key, reached, count(*) AS units "
            "FROM rollup_funnel_unit WHERE window_days = :wd AND reached > 0 "
            "AND experiment_id = ANY(CAST(:ids AS bigint[])) GROUP BY 1, 2, 3, 4"
        ),
        {"wd": window_days, "ids": list(experiment_ids)},
    )
    out: dict[tuple[int, str], dict[tuple[str, int], int]] = {}
    for r in rows:
        out.setdefault((r.experiment_id, r.funnel_name), {})[(r.variant_key, r.reached)] = int(
            r.units
        )
    return out


async def prune(session: AsyncSession, window_days: int, gone: Sequence[tuple[int, str]]) -> int:
    """Drop the state of the given (experiment id, funnel name) pairs: funnels removed, or
    experiments out of scope (a deleted experiment's rows go with it, ON DELETE CASCADE).
    By primary-key prefix: the rows of the other funnels are not read."""
    if not gone:
        return 0
    result = await session.execute(
        text(
            "DELETE FROM rollup_funnel_unit r USING unnest(CAST(:exps AS bigint[]), "
            "CAST(:names AS text[])) AS k(experiment_id, funnel_name) "
            "WHERE r.window_days = :wd AND r.experiment_id = k.experiment_id "
            "AND r.funnel_name = k.funnel_name"
        ),
        {"wd": window_days, "exps": [g[0] for g in gone], "names": [g[1] for g in gone]},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
