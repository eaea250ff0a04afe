"""Funnels from per-unit progress: a late event re-chains only its unit, incremental runs equal a
full recomputation and the funnel semantics, re-runs write nothing, retention keeps the counts."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, text

from engine.experiments.rollups import Job, run_rollups, window_for
from storage.database import Database
from storage.models import FunnelRollup
from tests.support.experiments import api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]

STEPS = ["open", "form", "purchase"]
FUNNEL = [{"name": "buy", "steps": STEPS}]


async def _counts(db: Database, funnel: str = "buy") -> dict[tuple[str, int], int]:
    async with db.session() as session:
        rows = await session.scalars(
            select(FunnelRollup).where(
                FunnelRollup.window_days == 7, FunnelRollup.funnel_name == funnel
            )
        )
        return {(r.variant_key, r.step): r.units for r in rows}


def _expected(
    events: list[dict[str, str]], variants: dict[str, str], steps: list[str] = STEPS
) -> dict[tuple[str, int], int]:
    """The funnel's definition, straight: t1 = first step-1 time, t_k = first step-k time at or
    after t_(k-1); a unit reached step k when t_k exists."""
    times: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for e in events:
        times[(e["unit_id"], e["name"])].append(datetime.fromisoformat(e["timestamp"]))
    out = {(v, k): 0 for v in ("control", "v1") for k in range(1, len(steps) + 1)}
    for unit, variant in variants.items():
        at: datetime | None = None
        for k, name in enumerate(steps, start=1):
            later = [t for t in times[(unit, name)] if at is None or t >= at]
            if not later:
                break
            at = min(later)
            out[(variant, k)] += 1
    return out


async def _received_earlier(db: Database) -> None:
    """What is stored so far arrived well before the next run's watermark grace."""
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE event_log SET received_at = received_at - interval '1 hour'")
        )


async def _retention_drops_before(db: Database, cut: datetime) -> None:
    """The raw events before `cut` go, as engine maintenance records it."""
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM event_log WHERE occurred_at < :t"), {"t": cut})
        await session.execute(
            text(
                "INSERT INTO retention_horizon (table_name, dropped_before) "
                "VALUES ('event_log', :t)"
            ),
            {"t": cut},
        )


async def _units(client: httpx.AsyncClient, n: int) -> dict[str, str]:
    variants = {}
    for i in range(n):
        body = (await client.post("/v1/assignment", json={"unit_id": f"u{i}"})).json()
        variants[f"u{i}"] = body["assignments"][0]["variant"]
    return variants


async def _post(client: httpx.AsyncClient, events: list[dict[str, str]]) -> None:
    for start in range(0, len(events), 100):
        body = await client.post("/v1/events", json={"events": events[start : start + 100]})
        assert body.json()["refused"] == []


async def test_a_late_event_rechains_its_unit_only(client: httpx.AsyncClient, db: Database) -> None:
    await make_experiment(db, "flow", funnels=FUNNEL)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 12)
    # Every unit opens and fills the form two days ago; none buys.
    base = now - timedelta(days=2)
    events = [
        event(u, n, base + timedelta(minutes=k))
        for u in variants
        for k, n in [(0, "open"), (1, "form")]
    ]
    await _post(client, events)
    await _received_earlier(db)
    window = window_for(7, now.date())
    await run_rollups(db, window, [Job.FUNNELS])
    assert sum(n for (_, k), n in (await _counts(db)).items() if k == 3) == 0

    # u0's raw events vanish behind the rollup's back: its late event comes after them, so its
    # chain times before it are kept from the state, never re-read.
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM event_log WHERE unit_id = 'u0'"))
    # u0 buys after its form; u1 "buys" before opening (out of order: not step 3) and u2 opens
    # again after its first open: neither can move its chain, so neither is re-chained.
    late = [
        event("u0", "purchase", base + timedelta(minutes=5)),
        event("u1", "purchase", base - timedelta(minutes=5)),
        event("u2", "open", base + timedelta(minutes=30)),
    ]
    await _post(client, late)

    report = await run_rollups(db, window, [Job.FUNNELS], incremental=True)

    [result] = report.results
    assert result.incremental and result.units_of_work == 1  # u0, not the other eleven
    counts = await _counts(db)
    assert counts == _expected(events + late, variants)
    assert sum(n for (_, k), n in counts.items() if k == 3) == 1
    assert sum(n for (_, k), n in counts.items() if k == 2) == 12


async def test_incremental_equals_full_and_the_definition(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Random late batches, anywhere in the window and in any order (repeats, ties, events
    before earlier steps): after each, the incremental result equals the full one."""
    await make_experiment(db, "rand", funnels=FUNNEL)
    rng = random.Random(13)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 30)
    window = window_for(7, now.date())
    names = [*STEPS, "other"]

    def batch(size: int) -> list[dict[str, str]]:
        return [
            event(
                f"u{rng.randrange(30)}",
                rng.choice(names),
                # whole minutes: ties between steps happen
                now - timedelta(minutes=rng.randrange(60, 6 * 24 * 60, 7)),
            )
            for _ in range(size)
        ]

    events = batch(150)
    await _post(client, events)
    await run_rollups(db, window, [Job.FUNNELS])
    for size in (1, 5, 20, 60):
        await _received_earlier(db)  # so that a run's units of work are the batch's alone
        late = batch(size)
        await _post(client, late)
        events += late
        incremental = await run_rollups(db, window, [Job.FUNNELS], incremental=True)
        assert incremental.results[0].units_of_work <= size
        after_incremental = await _counts(db)
        full = await run_rollups(db, window, [Job.FUNNELS])
        assert full.results[0].rows_written == 0  # the state was already what a rebuild gives
        assert full.checksums == incremental.checksums
        assert after_incremental == _expected(events, variants)


async def test_rerun_writes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    await make_experiment(db, "again", funnels=FUNNEL)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 10)
    await _post(client, [event(u, n, now - timedelta(hours=3)) for u in variants for n in STEPS])
    await _received_earlier(db)
    window = window_for(7, now.date())
    first = await run_rollups(db, window, [Job.FUNNELS])
    assert first.results[0].rows_written > 0
    full = await run_rollups(db, window, [Job.FUNNELS])
    incremental = await run_rollups(db, window, [Job.FUNNELS], incremental=True)
    assert full.results[0].rows_written == 0
    assert incremental.results[0].rows_written == 0
    assert incremental.results[0].units_of_work == 0  # nothing arrived: nothing re-chained
    assert full.checksums == incremental.checksums == first.checksums


async def test_retention_keeps_funnels_computed_from_dropped_days(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "kept", funnels=FUNNEL)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 8)
    old = now - timedelta(days=5)
    # Steps 1-2 five days ago, step 3 yesterday: the funnel needs both ends.
    events = [
        event(u, n, old + timedelta(minutes=k)) for u in variants for k, n in enumerate(STEPS[:2])
    ]
    events += [event(u, "purchase", now - timedelta(days=1)) for u in variants]
    await _post(client, events)
    window = window_for(7, now.date())
    first = await run_rollups(db, window, [Job.FUNNELS])
    before = await _counts(db)
    assert sum(n for (_, k), n in before.items() if k == 3) == 8

    # Retention drops the days before three days ago (as engine maintenance records it).
    cut = now - timedelta(days=3)
    await _retention_drops_before(db, cut)
    full = await run_rollups(db, window, [Job.FUNNELS])
    assert full.results[0].rows_written == 0
    assert full.checksums == first.checksums
    assert await _counts(db) == before == _expected(events, variants)


async def _state(db: Database) -> list[tuple[str, int, int]]:
    async with db.session() as session:
        rows = await session.execute(
            text(
                "SELECT unit_id, reached, cardinality(reached_at) FROM rollup_funnel_unit "
                "WHERE window_days = 7 ORDER BY unit_id"
            )
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_the_shares_of_units_give_one_state_whatever_their_number(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A full run chains the units in shares on several sessions: one share, two or five give
    the same state and counts, and a moved window deletes the units whose events left it."""
    await make_experiment(db, "shares", funnels=FUNNEL)
    rng = random.Random(5)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 40)
    events = [
        event(f"u{rng.randrange(1, 40)}", rng.choice(STEPS), now - timedelta(minutes=m))
        for m in rng.sample(range(60, 6 * 24 * 60), 300)
    ]
    # u0 goes through, but only five to six days ago: out of a window that ends two days later.
    events += [event("u0", n, now - timedelta(days=5, hours=20 - k)) for k, n in enumerate(STEPS)]
    await _post(client, events)
    window = window_for(7, now.date())
    states = []
    for readers in (5, 2, 1):  # the first builds the state from nothing
        report = await run_rollups(db, window, [Job.FUNNELS], readers=readers)
        states.append((await _state(db), await _counts(db), report.checksums))
        assert report.results[0].units_of_work == len(states[0][0])
    assert states[0] == states[1] == states[2]
    assert states[0][1] == _expected(events, variants)
    assert ("u0", 3, 3) in states[0][0]

    moved = window_for(7, now.date() + timedelta(days=2))
    await run_rollups(db, moved, [Job.FUNNELS], readers=2)
    after = await _state(db)
    assert [u for u, _, _ in after if u == "u0"] == []
    start = datetime.combine(moved.start, datetime.min.time(), UTC)
    assert await _counts(db) == _expected(
        [e for e in events if datetime.fromisoformat(e["timestamp"]) >= start], variants
    )


async def test_funnels_of_different_lengths_and_repeated_steps_in_one_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    """One statement chains every funnel: a 2-step one and a 4-step one that comes back to its
    first step, over random late batches (ties, repeats, steps out of order)."""
    funnels = {"short": ["open", "form"], "loop": ["open", "form", "open", "purchase"]}
    await make_experiment(
        db, "mixed", funnels=[{"name": n, "steps": st} for n, st in funnels.items()]
    )
    rng = random.Random(21)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 25)
    window = window_for(7, now.date())

    def batch(size: int) -> list[dict[str, str]]:
        return [
            event(
                f"u{rng.randrange(25)}",
                rng.choice([*STEPS, "other"]),
                now - timedelta(minutes=rng.randrange(60, 6 * 24 * 60, 11)),
            )
            for _ in range(size)
        ]

    events = batch(200)
    await _post(client, events)
    await run_rollups(db, window, [Job.FUNNELS])
    for size in (3, 30, 90):
        await _received_earlier(db)
        late = batch(size)
        await _post(client, late)
        events += late
        incremental = await run_rollups(db, window, [Job.FUNNELS], incremental=True)
        for name, steps in funnels.items():
            assert await _counts(db, name) == _expected(events, variants, steps)
        full = await run_rollups(db, window, [Job.FUNNELS])
        assert full.results[0].rows_written == 0
        assert full.checksums == incremental.checksums


async def test_a_late_event_dated_before_the_retention_horizon_keeps_the_progress(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Retention dropped a unit's first steps; a late event dated in those days (accepted: the
    api takes events up to 30 days old) must not re-chain it over the days that are gone."""
    await make_experiment(db, "horizon", funnels=FUNNEL)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 4)
    old = now - timedelta(days=5)
    events = [
        event(u, n, old + timedelta(minutes=k)) for u in variants for k, n in enumerate(STEPS[:2])
    ]
    await _post(client, events)
    await _received_earlier(db)
    window = window_for(7, now.date())
    await run_rollups(db, window, [Job.FUNNELS])
    before = await _counts(db)
    assert sum(n for (_, k), n in before.items() if k == 2) == 4

    cut = now - timedelta(days=3)
    await _retention_drops_before(db, cut)
    # A step-1 event a minute before u0's first: it would move u0's t1, and its form is gone.
    await _post(client, [event("u0", "open", old - timedelta(minutes=1))])
    await run_rollups(db, window, [Job.FUNNELS], incremental=True)
    assert await _counts(db) == before
    assert ("u0", 2, 2) in await _state(db)


async def test_rows_a_failed_run_staged_never_reach_the_state(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "stale", funnels=FUNNEL)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 6)
    events = [event(u, n, now - timedelta(hours=3)) for u in variants for n in STEPS[:2]]
    await _post(client, events)
    window = window_for(7, now.date())
    await run_rollups(db, window, [Job.FUNNELS])  # counted: the next full run goes by the stage
    # An earlier run (ids start at 1) whose sessions staged rows, then failed before writing
    # them: a unit that does not exist, and u1 with more steps than it reached.
    async with db.transaction() as session:
        exp_id = await session.scalar(text("SELECT id FROM experiment WHERE key = 'stale'"))
        await session.execute(
            text(
                "INSERT INTO rollup_funnel_stage (run_id, experiment_id, funnel_name, unit_id, "
                "variant_key, reached, reached_at, was) VALUES "
                "(0, :e, 'buy', 'ghost', 'control', 3, ARRAY[now(), now(), now()], NULL), "
                "(0, :e, 'buy', 'u1', 'control', 3, ARRAY[now(), now(), now()], 2)"
            ),
            {"e": exp_id},
        )
    full = await run_rollups(db, window, [Job.FUNNELS])
    assert full.results[0].rows_written == 0
    assert await _counts(db) == _expected(events, variants)
    assert {u for u, _, _ in await _state(db)} == set(variants)
    async with db.session() as session:
        assert await session.scalar(text("SELECT count(*) FROM rollup_funnel_stage")) == 0


async def test_a_first_build_that_failed_after_writing_the_state_is_rebuilt_against_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A first build's sessions write the state themselves: if its job then failed, the funnel
    has no counts, so the next run, even incremental, rebuilds it against that state."""
    await make_experiment(db, "first", funnels=FUNNEL)
    now = datetime.now(UTC).replace(microsecond=0)
    variants = await _units(client, 5)
    events = [event(u, n, now - timedelta(hours=2)) for u in variants for n in STEPS]
    await _post(client, events)
    window = window_for(7, now.date())
    # What the failed build left: a unit that never was, and u1 with less than it reached.
    async with db.transaction() as session:
        exp_id = await session.scalar(text("SELECT id FROM experiment WHERE key = 'first'"))
        await session.execute(
            text(
                "INSERT INTO rollup_funnel_unit (window_days, experiment_id, funnel_name, "
                "unit_id, variant_key, reached, reached_at) VALUES "
                "(7, :e, 'buy', 'ghost', 'control', 1, ARRAY[now()]), "
                "(7, :e, 'buy', 'u1', :v, 1, ARRAY[now()])"
            ),
            {"e": exp_id, "v": variants["u1"]},
        )
    report = await run_rollups(db, window, [Job.FUNNELS], incremental=True)
    assert report.results[0].units_of_work == 5
    assert await _counts(db) == _expected(events, variants)
    assert await _state(db) == [(u, 3, 3) for u in sorted(variants)]
