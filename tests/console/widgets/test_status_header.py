"""The console header never vouches for what it could not check: no "engine alive" while Redis
is unreachable, and a Postgres that does not answer is shown.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from console.app import CreatordeckApp
from console.widgets.status_header import StatusHeader
from engine import tick_queue
from storage.embedded.servers import EmbeddedRedis
from storage.settings import Settings
from tests.console.test_app import SIZE, frozen_clock, wait_until


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis this test may stop (a short folder: a unix socket path must fit ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="cdhdr-"))
    server = EmbeddedRedis(folder)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def header(app: CreatordeckApp) -> str:
    return str(app.screen.query_one(StatusHeader).render().plain)


async def test_redis_going_away_turns_engine_alive_into_redis_down(
    test_settings: Settings, own_redis: EmbeddedRedis
) -> None:
    settings = test_settings.model_copy(update={"redis_url": own_redis.url})
    client = Redis.from_url(own_redis.url)
    # What a live engine's arq worker writes (it expires unless rewritten): a fresh heartbeat.
    await client.set(tick_queue.health_check_key(settings), "j_complete=0 j_failed=0", ex=60)
    await client.aclose()
    app = CreatordeckApp(settings, clock=frozen_clock, landing="regions")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "engine: alive" in header(app), "engine alive")

        own_redis.stop()

        await wait_until(pilot, lambda: "redis down" in header(app), "redis down")
        seen: Any = header(app)
        assert "engine: unknown" in seen and "alive" not in seen and "ready" not in seen

        own_redis.start()  # it comes back: the header says so again
        await wait_until(pilot, lambda: "0 ready" in header(app), "figures again")


async def test_a_postgres_that_does_not_answer_is_shown(test_settings: Settings) -> None:
    broken = test_settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/nowhere"}
    )
    app = CreatordeckApp(broken, clock=frozen_clock, landing="regions")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "db down" in header(app), "db down")
        # Redis still read: the engine still shows ("db down" takes room at 80 columns).
        assert "engine: no report" in header(app)  # the queue may give way to the alerts
