"""Shared fixtures and helpers of the experiments tests (imported by them; holds no tests)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from engine.api.app import create_app
from engine.api.context import ApiContext
from storage.database import Database
from storage.models import ExperimentStatus
from storage.queries import experiments as q
from storage.settings import Settings

TOKEN = "test-dashboard-token"


@pytest.fixture(scope="module")
async def api_ctx(test_settings: Settings) -> AsyncIterator[ApiContext]:
    settings = test_settings.replace(api={"dashboard_token": SecretStr(TOKEN)})
    ctx = await ApiContext.open(settings)
    ctx.definitions._ttl_s = 0  # tests edit experiments between requests
    yield ctx
    await ctx.close()


@pytest.fixture
async def client(api_ctx: ApiContext) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_ctx.settings, ctx=api_ctx)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


async def make_experiment(
    db: Database,
    key: str = "onboarding",
    *,
    weights: tuple[float, ...] = (0.5, 0.5),
    status: ExperimentStatus | None = ExperimentStatus.RUNNING,
    coverage: float = 1.0,
    metric: str = "purchase",
    funnels: list[dict[str, Any]] | None = None,
) -> None:
    variants = [
        {"key": "control" if i == 0 else f"v{i}", "weight": w} for i, w in enumerate(weights)
    ]
    data = q.ExperimentInput(
        key=key,
        name=key.title(),
        primary_metric=metric,
        coverage=coverage,
        variants=variants,  # type: ignore[arg-type]
        funnels=funnels or [],  # type: ignore[arg-type]
    )
    async with db.transaction() as session:
        await q.create_experiment(session, data, actor="test")
        if status is not None and status != ExperimentStatus.DRAFT:
            await q.set_status(session, key, ExperimentStatus.RUNNING, actor="test")
            if status != ExperimentStatus.RUNNING:
                await q.set_status(session, key, status, actor="test")


def event(unit: str, name: str, at: datetime | None = None, **props: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "unit_id": unit,
        "name": name,
        "timestamp": (at or datetime.now(UTC)).isoformat(),
        "properties": props,
    }
