"""Metrics reads: the token guard, and numbers from the rollup tables."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from engine.api.app import create_app
from engine.api.context import ApiContext
from engine.experiments.rollups import run_rollups, window_for
from storage.database import Database
from tests.support.experiments import TOKEN, api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]
GUARDED = ["/v1/metrics/daily", "/v1/metrics/experiments", "/v1/metrics/funnels"]


@pytest.mark.parametrize("path", GUARDED)
async def test_missing_or_wrong_token_is_refused(client: httpx.AsyncClient, path: str) -> None:
    missing = await client.get(path)
    assert missing.status_code == 401
    assert "x-dashboard-token" in missing.json()["detail"]
    wrong = await client.get(path, headers={"x-dashboard-token": TOKEN + "x"})
    assert wrong.status_code == 401
    right = await client.get(path, headers={"x-dashboard-token": TOKEN})
    assert right.status_code == 200


@pytest.mark.parametrize("path", GUARDED)
async def test_unset_token_refuses_with_a_clear_message(api_ctx: ApiContext, path: str) -> None:
    settings = api_ctx.settings.replace(api={"dashboard_token": None})
    ctx = ApiContext(settings, api_ctx.db, api_ctx.pool, api_ctx.redis, api_ctx.definitions)
    transport = httpx.ASGITransport(app=create_app(settings, ctx=ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        response = await http.get(path, headers={"x-dashboard-token": "anything"})
    assert response.status_code == 503
    assert "DASHBOARD_TOKEN" in response.json()["detail"]
    _ = SecretStr  # the token type the settings hold


async def test_summary_is_public_and_health_reports_dependencies(
    client: httpx.AsyncClient,
) -> None:
    summary = await client.get("/v1/metrics/summary")
    assert summary.status_code == 200
    assert summary.json()["events"] == 0
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_experiment_metrics_come_from_the_rollup(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "buy", funnels=[{"name": "shop", "steps": ["open", "purchase"]}])
    headers = {"x-dashboard-token": TOKEN}
    before = await client.get("/v1/metrics/experiments?experiment_id=buy", headers=headers)
    assert before.status_code == 404
    assert "creatordeck rollup" in before.json()["detail"]
    events = []
    for i in range(40):
        await client.post("/v1/assignment", json={"unit_id": f"m{i}"})
        events.append(event(f"m{i}", "open"))
        if i % 4 == 0:
            events.append(event(f"m{i}", "purchase"))
    await client.post("/v1/events", json={"events": events})
    await run_rollups(db, window_for(14))
    body = (await client.get("/v1/metrics/experiments?experiment_id=buy", headers=headers)).json()
    [metrics] = body["experiments"]
    assert sum(v["units"] for v in metrics["variants"]) == 40
    assert sum(v["conversions"] for v in metrics["variants"]) == 10
    assert metrics["enough_data"] is False and metrics["leader"] is None
    assert metrics["variants"][0]["verdict"] == "control"
    funnels = (await client.get("/v1/metrics/funnels?funnel_name=shop", headers=headers)).json()[
        "funnels"
    ]
    [shop] = funnels
    assert sum(v["steps"][0]["units"] for v in shop["variants"]) == 40
    assert sum(v["steps"][1]["units"] for v in shop["variants"]) == 10
    daily = (await client.get("/v1/metrics/daily?window_days=1", headers=headers)).json()
    assert {r["event_name"]: r["events"] for r in daily["rows"]} == {"open": 40, "purchase": 10}
    summary = (await client.get("/v1/metrics/summary")).json()
    assert summary["events"] == 50 and summary["experiments"] == {"running": 1}


async def test_openapi_states_the_limits(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    batch = schema["components"]["schemas"]["EventBatch"]
    assert batch["properties"]["events"]["maxItems"] == 1000
    assert "8192 bytes" in schema["paths"]["/v1/events"]["post"]["requestBody"]["description"]
    assert "x-dashboard-token" in str(schema["components"]["securitySchemes"])
