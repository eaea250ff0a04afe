"""Demo data for experiments: two experiments, synthetic app traffic over a week, rollups.

`seed_demo(db)` is idempotent: an experiment that exists is left as it is (and its traffic is
not added twice). Traffic goes through the same paths as the API's (GrowthBook bucketing,
stored assignments, the batch insert with enrichment), so the console shows real rollups.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from engine.experiments.rollups import run_rollups, window_for
from engine.maths import hashing
from storage.database import Database, plain_dsn
from storage.models import ExperimentStatus
from storage.queries import experiments as q

DEMO_UNITS = 3000
DEMO_ACTOR = "demo-seed"

EXPERIMENTS = [
    q.ExperimentInput(
        key="onboarding-v2",
        name="Shorter onboarding",
        hypothesis="Two onboarding screens instead of five raise sign-ups.",
        primary_metric="signup",
        variants=[
            q.VariantInput(key="control", name="five screens", weight=0.5),
            q.VariantInput(key="short", name="two screens", weight=0.5),
        ],
        funnels=[q.FunnelInput(name="signup", steps=["app_open", "onboarding_done", "signup"])],
    ),
    q.ExperimentInput(
        key="creator-cards",
        name="Bigger creator cards",
        hypothesis="Bigger cards on the home feed lead to more follows.",
        primary_metric="follow",
        variants=[
            q.VariantInput(key="control", weight=0.5),
            q.VariantInput(key="big", weight=0.5),
        ],
    ),
]
# Conversion rates per variant: the short onboarding wins.
RATES = {("onboarding-v2", "control"): (0.62, 0.30), ("onboarding-v2", "short"): (0.75, 0.38)}


async def seed_demo(db: Database, units: int = DEMO_UNITS, seed: int = 7) -> int:
    """Create the demo experiments and their traffic; returns the events stored."""
    created = []
    async with db.transaction() as session:
        for data in EXPERIMENTS:
            if await q.get_experiment(session, data.key) is None:
                await q.create_experiment(session, data, actor=DEMO_ACTOR)
                created.append(data.key)
        if "onboarding-v2" in created:
            await q.set_status(session, "onboarding-v2", ExperimentStatus.RUNNING, actor=DEMO_ACTOR)
    if "onboarding-v2" not in created:
        return 0
    async with db.session() as session:
        defs = {d.key: d for d in await q.live_definitions(session)}
    live = defs["onboarding-v2"]
    definition = hashing.Definition(live.key, live.variant_keys, live.weights)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    stored = 0
    driver = await asyncpg.connect(plain_dsn(db.url))
    try:
        for i in range(units):
            unit = f"demo-device-{i}"
            bucketed = hashing.assign(definition, unit)
            if bucketed is None:
                continue
            await q.assign_unit(
                driver, unit, [live.id], [(live.id, bucketed.variant_key, bucketed.bucket)]
            )
            done_rate, signup_rate = RATES[(live.key, bucketed.variant_key)]
            at = now - timedelta(days=rng.uniform(0, 6.5))
            names = ["app_open"]
            if rng.random() < done_rate:
                names.append("onboarding_done")
                if rng.random() < signup_rate / done_rate:
                    names.append("signup")
            events = [
                {
                    "event_id": uuid.uuid4(),
                    "unit_id": unit,
                    "name": name,
                    "ts": at + timedelta(minutes=k),
                    "properties": {"demo": True},
                }
                for k, name in enumerate(names)
            ]
            stored += await q.insert_events(driver, orjson.dumps(events), 0.0, now)
    finally:
        await driver.close()
    await run_rollups(db, window_for(14), trigger="demo")
    return stored
