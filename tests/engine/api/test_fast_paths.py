"""The api's fast paths answer exactly what the FastAPI routes answer, and the api's pool keeps
the session state the event batch relies on (engine/api/context.py's invariant)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from engine.api import routes_assignment
from engine.api.context import ApiContext
from storage.database import Database
from storage.models import ExperimentStatus
from storage.queries.experiments import INDEX_PROBES_ONLY
from tests.support.experiments import api_ctx, client, event, make_experiment

__all__ = ["api_ctx", "client"]
# FastAPI takes any application/*+json body as JSON; the fast path takes application/json only.
VIA_FASTAPI = {"content-type": "application/vnd.creatordeck+json"}


async def _post(
    client: httpx.AsyncClient, body: dict[str, object], **headers: str
) -> httpx.Response:
    return await client.post("/v1/assignment", content=orjson.dumps(body), headers=headers)


async def test_the_fast_answer_is_the_routes_answer(
    client: httpx.AsyncClient, api_ctx: ApiContext, db: Database
) -> None:
    await make_experiment(db, "checkout", weights=(0.5, 0.5))
    await make_experiment(db, "paused-one", status=ExperimentStatus.PAUSED)
    await make_experiment(db, "narrow", coverage=0.0)
    request = {"unit_id": "dévice-1", "experiments": ["checkout", "ghost", "narrow", "paused-one"]}
    first = await _post(client, request, **VIA_FASTAPI)  # stores the assignment (new)
    assert first.status_code == 200, first.text
    slow = await _post(client, request, **VIA_FASTAPI)
    fast = await routes_assignment.fast_answer(api_ctx, orjson.dumps(request))
    assert fast is not None
    assert orjson.loads(fast) == slow.json()
    assert slow.json()["assignments"][0]["new"] is False
    over_http = await _post(client, request, **{"content-type": "application/json"})
    assert over_http.json() == slow.json()
    assert over_http.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"unit_id": ""}', b'{"unit_id": "a", "extra": 1}', b"not json", b""],
)
async def test_the_fast_path_leaves_refusals_to_the_route(
    api_ctx: ApiContext, client: httpx.AsyncClient, body: bytes
) -> None:
    assert await routes_assignment.fast_answer(api_ctx, body) is None
    response = await client.post(
        "/v1/assignment", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert "detail" in response.json()


def test_only_plain_json_takes_the_fast_path() -> None:
    assert routes_assignment.is_json(b"application/json")
    assert routes_assignment.is_json(b"Application/JSON; charset=UTF-8")
    assert not routes_assignment.is_json(None)
    assert not routes_assignment.is_json(b"text/plain")
    assert not routes_assignment.is_json(b"application/json; charset=utf-16")
    assert not routes_assignment.is_json(b"application/vnd.creatordeck+json")


async def test_the_pools_sessions_keep_the_index_probe_settings(api_ctx: ApiContext) -> None:
    assert api_ctx.session_pinned
    # Every connection of the pool, also after a request left a transaction open on one.
    async with api_ctx.pool.acquire() as conn:
        await conn.execute("BEGIN; SET LOCAL enable_seqscan = on")
    for _ in range(3):
        async with api_ctx.pool.acquire() as conn:
            assert not conn.is_in_transaction()
            for name, value in INDEX_PROBES_ONLY.items():
                assert await conn.fetchval(f"SHOW {name}") == value


async def test_a_batch_on_the_pinned_pool_is_stored_once(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    batch = {"events": [event("u-1", "open", now), event("u-2", "open", now)]}
    first = await client.post("/v1/events", json=batch)
    again = await client.post("/v1/events", json=batch)
    assert first.json()["stored"] == 2
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2
