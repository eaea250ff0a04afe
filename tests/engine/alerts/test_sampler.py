"""The engine's alert sampler: the same facts the console judges, exported as the gauges the
Prometheus rules compare, in an exposition `promtool check metrics` accepts."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from engine import metrics, redis_keys
from engine.alerts import sampler
from engine.alerts.facts import FactReader
from storage.database import Database
from storage.models import Connection, DeadLetter
from storage.settings import Settings
from tests.engine.alerts.test_rules import promtool


def sample(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels or None)


async def test_export_sets_the_gauges_the_rules_read(
    test_settings: Settings, db: Database, redis: Redis
) -> None:
    now = datetime.now(UTC)
    async with db.session() as session:
        session.add(
            Connection(
                platform="x",
                account_id="1",
                display_name="@t",
                token_encrypted="x",
                expires_at=now + timedelta(hours=5),
            )
        )
        session.add(DeadLetter(kind="fetch", dedupe_key="k", error="e", payload={}))
        await session.commit()
    await redis.zadd(redis_keys.replicas_key(test_settings), {"e:1": int(now.timestamp() * 1000)})
    reader = FactReader(db, test_settings)
    try:
        sampler.export(await reader.read(now, redis))
    finally:
        await reader.close()
    assert sample("creatordeck_dependency_up", dependency="postgres") == 1
    assert sample("creatordeck_dependency_up", dependency="redis") == 1
    assert sample("creatordeck_engine_replicas") == 1
    assert sample("creatordeck_dead_letters_pending") == 1
    assert sample("creatordeck_regions_overdue") == 0
    left = sample("creatordeck_token_expires_in_seconds", platform="x")
    assert left is not None and 5 * 3600 - 60 < left <= 5 * 3600
    assert sample("creatordeck_quota_used_ratio", platform="mock") is not None

    # Redis away: its gauge says so, Postgres' facts still come.
    sampler.export(await FactReader(db, test_settings).read(now, None, "refused"))
    assert sample("creatordeck_dependency_up", dependency="redis") == 0
    assert sample("creatordeck_dependency_up", dependency="postgres") == 1

    checked = subprocess.run(
        [promtool(), "check", "metrics"],
        input=metrics.exposition(),
        capture_output=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
