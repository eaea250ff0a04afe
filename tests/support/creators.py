"""Shared helpers for creator-tracking tests: a mock platform in process, creators, a caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from engine.mock_platform.app import create_app
from engine.mock_platform.config import MockConfig
from engine.mock_platform.faults import MockState
from engine.platforms.caller import PlatformCaller
from engine.resilience import BreakerConfig, RetryPolicy
from storage.database import Database
from storage.queries import creators
from storage.queries.creators import CreatorInput
from storage.queries.regions import upsert_seed_regions
from storage.settings import Settings, TrackingSettings

MOCK_URL = "http://mockstagram.test"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class MockPlatform:
    app: FastAPI
    clock: Clock

    @property
    def state(self) -> MockState:
        state: MockState = self.app.state.mock
        return state


def tracking(**overrides: object) -> TrackingSettings:
    values: dict[str, object] = {
        "mockstagram_url": MOCK_URL,
        "fetch_batch_size": 50,
        "fetch_max_tries": 3,
        "sample_slot_s": 60,
    }
    values.update(overrides)
    return TrackingSettings(_env_file=None, **values)  # type: ignore[arg-type]


def mock_platform(**config: object) -> MockPlatform:
    clock = Clock(1_790_000_000.0)
    return MockPlatform(create_app(MockConfig.model_validate(config), clock=clock), clock)


@asynccontextmanager
async def caller_for(
    redis: Redis,
    settings: Settings,
    mock: MockPlatform,
    ts: TrackingSettings | None = None,
    breaker: BreakerConfig | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[PlatformCaller]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=mock.app), timeout=5)
    kwargs = {"retry_policy": retry} if retry is not None else {}
    caller = PlatformCaller(
        redis, settings, ts or tracking(), client=client, breaker_config=breaker, **kwargs
    )
    try:
        yield caller
    finally:
        await caller.close()


async def add_region(db: Database, code: str = "TEST_REGION", cron: str = "0 3 * * *") -> None:
    async with db.transaction() as session:
        await upsert_seed_regions(
            session,
            [
                {
                    "code": code,
                    "name": code.title(),
                    "cron": cron,
                    "timezone": "UTC",
                    "schedule_since": datetime.now(UTC),
                }
            ],
        )


async def add_creators(
    db: Database, count: int, region: str = "TEST_REGION", platform: str = "mock", first: int = 0
) -> list[int]:
    rows = [
        CreatorInput(
            platform=platform,  # type: ignore[arg-type]
            external_id=f"acct{n}",
            handle=f"@creator{n}",
            region_code=region,
        )
        for n in range(first, first + count)
    ]
    async with db.transaction() as session:
        await creators.upsert_creators(session, rows)
        found = await creators.due_creators(session, region, datetime.now(UTC))
    return sorted(cid for cid, _ in found)
