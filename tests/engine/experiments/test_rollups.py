"""Rollups: correct counts, byte-identical re-runs, late events, incremental runs, the CLI."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from engine.experiments.rollups import Job, check_idempotency, run_rollups, window_for
from storage.database import Database
from storage.models import DailyRollup, ExperimentRollup, FunnelRollup, RollupRun
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.experiments import api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]

FUNNEL = [{"name": "signup", "steps": ["open", "form", "purchase"]}]


async def _scenario(client: httpx.AsyncClient, db: Database) -> dict[str, object]:
    """60 units in a running experiment, events over three days; returns what to expect."""
    await make_experiment(db, "flow", funnels=FUNNEL)
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    variants: dict[str, str] = {}
    events = []
    for i in range(60):
        unit = f"u{i}"
        body = (await client.post("/v1/assignment", json={"unit_id": unit})).json()
        variants[unit] = body["assignments"][0]["variant"]
        base = now - timedelta(days=rng.randrange(0, 3), minutes=30)
        names = ["open"]
        if rng.random() < 0.7:
            names.append("form")
        if rng.random() < 0.5:
            names.append("purchase")
        if rng.random() < 0.2:
            names.insert(0, "purchase")  # a purchase before the form: funnel order matters
        for k, name in enumerate(names):
            events.append(event(unit, name, base + timedelta(minutes=k)))
    for start in range(0, len(events), 100):
        batch = {"events": events[start : start + 100]}
        assert (await client.post("/v1/events", json=batch)).json()["refused"] == []
    return {"variants": variants, "events": events}


def _expected_daily(events: list[dict[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    units: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in events:
        day = datetime.fromisoformat(e["timestamp"]).astimezone(UTC).date().isoformat()
        counts[(day, e["name"])] += 1
        units[(day, e["name"])].add(e["unit_id"])
    return {k: (counts[k], len(units[k])) for k in counts}


async def test_rollups_count_right(client: httpx.AsyncClient, db: Database) -> None:
    scenario = await _scenario(client, db)
    events: list[dict[str, str]] = scenario["events"]  # type: ignore[assignment]
    variants: dict[str, str] = scenario["variants"]  # type: ignore[assignment]
    report = await run_rollups(db, window_for(14))
    assert [r.job for r in report.results] == [Job.DAILY, Job.EXPERIMENTS, Job.FUNNELS]
    async with db.session() as session:
        daily = list(await session.scalars(select(DailyRollup)))
        per_variant = list(await session.scalars(select(ExperimentRollup)))
        funnel = list(await session.scalars(select(FunnelRollup)))
    assert {(r.day.isoformat(), r.event_name): (r.events, r.units) for r in daily} == (
        _expected_daily(events)
    )
    units_by_variant: dict[str, int] = defaultdict(int)
    for variant in variants.values():
        units_by_variant[variant] += 1
    buyers = {e["unit_id"] for e in events if e["name"] == "purchase"}
    conversions: dict[str, int] = defaultdict(int)
    for unit in buyers:
        conversions[variants[unit]] += 1
    got = {r.variant_key: (r.units, r.conversions) for r in per_variant}
    assert got == {v: (units_by_variant[v], conversions[v]) for v in ("control", "v1")}
    # Funnel: ordered steps, a purchase before the form does not count as step 3.
    reached: dict[tuple[str, int], int] = defaultdict(int)
    by_unit: dict[str, list[dict[str, str]]] = defaultdict(list)
    for e in events:
        by_unit[e["unit_id"]].append(e)
    for unit, evs in by_unit.items():
        evs.sort(key=lambda e: e["timestamp"])
        step = 0
        for e in evs:
            if step < 3 and e["name"] == FUNNEL[0]["steps"][step]:
                step += 1
        for k in range(1, step + 1):
            reached[(variants[unit], k)] += 1
    assert {(r.variant_key, r.step): r.units for r in funnel} == {
        (v, k): reached[(v, k)] for v in ("control", "v1") for k in (1, 2, 3)
    }


async def test_rerun_is_byte_identical_and_writes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await _scenario(client, db)
    check = await check_idempotency(db, window_for(14))
    assert check.identical, check.changed_tables
    assert all(r.rows_written > 0 for r in check.first.results)
    assert all(r.rows_written == 0 for r in check.second.results)
    async with db.session() as session:
        runs = list(await session.scalars(select(RollupRun).order_by(RollupRun.id)))
    assert [r.job for r in runs] == ["daily", "experiments", "funnels"] * 2
    assert all(r.status == "ok" and r.checksum and r.watermark for r in runs)


async def test_late_events_are_picked_up_by_the_next_run(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "late")
    await client.post("/v1/assignment", json={"unit_id": "slow"})
    window = window_for(14)
    first = await run_rollups(db, window)
    # An event from two days ago arrives after the rollup (the phone was offline).
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    batch = {"events": [event("slow", "purchase", two_days_ago)]}
    assert (await client.post("/v1/events", json=batch)).json()["stored"] == 1
    incremental = await run_rollups(db, window, incremental=True)
    assert incremental.checksums != first.checksums
    daily, experiments, _funnels = incremental.results
    assert daily.incremental and daily.units_of_work == 1  # only that day recomputed
    assert experiments.units_of_work == 1
    full = await run_rollups(db, window)
    assert full.checksums == incremental.checksums  # incremental == full recomputation
    async with db.session() as session:
        row = await session.scalar(
            select(DailyRollup).where(DailyRollup.day == two_days_ago.date())
        )
    assert row is not None and (row.events, row.units) == (1, 1)


async def test_incremental_run_with_nothing_new_recomputes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await _scenario(client, db)
    window = window_for(14)
    await run_rollups(db, window)
    again = await run_rollups(db, window, incremental=True)
    # The watermark grace re-reads the last minutes, so "nothing new" is at most those.
    assert all(r.incremental for r in again.results)
    assert all(r.rows_written == 0 for r in again.results)


def test_cli_check_idempotency_exits_zero(test_settings: Settings) -> None:
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "console.cli",
            "rollup",
            "--window-days",
            "7",
            "--check-idempotency",
        ],
        env=engine_env(test_settings),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "idempotent" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROLLUP_READERS": "0"}, "bad setting: ROLLUP_READERS: Input should be greater than"),
        ({"CONCURRENCY": "many"}, "bad setting: CONCURRENCY: Input should be a valid integer"),
    ],
)
def test_cli_bad_setting_is_one_line_not_a_traceback(
    test_settings: Settings, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "rollup", "--window-days", "7"],
        env=engine_env(test_settings, **env),
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_failed_job_is_recorded_and_the_others_still_finish(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs of a run go side by side: one that fails is recorded failed with its error,
    the others end and are recorded ok, and the run raises the failure."""
    from storage.queries import experiments as q

    await _scenario(client, db)

    async def broken(*_: object) -> list[object]:
        raise RuntimeError("daily read failed")

    monkeypatch.setattr(q, "compute_daily", broken)
    with pytest.raises(RuntimeError, match="daily read failed"):
        await run_rollups(db, window_for(14))
    async with db.session() as session:
        runs = list(await session.scalars(select(RollupRun).order_by(RollupRun.id)))
    assert [(r.job, r.status) for r in runs] == [
        ("daily", "failed"),
        ("experiments", "ok"),
        ("funnels", "ok"),
    ]
    assert "daily read failed" in (runs[0].error or "")
    async with db.session() as session:
        assert list(await session.scalars(select(DailyRollup))) == []  # rolled back whole
        assert list(await session.scalars(select(ExperimentRollup))) != []
