"""Postgres unreachable (restarting, gone): the api answers 503 with what to do, never 500,
and stores nothing; the same requests succeed once it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from engine.api.app import create_app
from engine.api.context import ApiContext
from engine.experiments.assignment import DefinitionCache
from storage.database import Database
from tests.support.experiments import api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]
DEAD = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


@pytest.fixture
async def dead_client(api_ctx: ApiContext) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_ctx.settings
    db = Database(settings, DEAD)
    pool = await asyncpg.create_pool(DEAD, min_size=0)
    ctx = ApiContext(settings, db, pool, api_ctx.redis, DefinitionCache(db))
    transport = httpx.ASGITransport(app=create_app(settings, ctx=ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    await pool.close()
    await db.dispose()


async def test_events_answer_503_with_advice_when_the_database_is_down(
    dead_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    batch = {"events": [event("u-1", "open", datetime.now(UTC))]}
    response = await dead_client.post("/v1/events", json=batch)
    assert response.status_code == 503
    assert "database is unreachable" in response.json()["detail"]
    assert "send it again" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
    resent = await client.post("/v1/events", json=batch)  # Postgres back: the resend lands once
    assert resent.status_code == 200 and resent.json()["stored"] == 1


async def test_assignment_answers_503_when_the_database_is_down(
    dead_client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "buy")
    response = await dead_client.post("/v1/assignment", json={"unit_id": "device-1"})
    assert response.status_code == 503
    assert "database is unreachable" in response.json()["detail"]
    assert response.headers["retry-after"] == "1"
