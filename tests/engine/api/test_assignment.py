"""POST /v1/assignment: sticky, GrowthBook-reproducible, stored once."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from engine.maths import hashing
from storage.database import Database
from storage.models import Assignment, ExperimentStatus
from storage.queries import experiments as q
from tests.support.experiments import api_ctx, client, make_experiment

__all__ = ["api_ctx", "client"]


async def test_fresh_unit_gets_growthbooks_variant_and_it_is_stored(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "checkout", weights=(0.5, 0.5))
    response = await client.post("/v1/assignment", json={"unit_id": "device-1"})
    assert response.status_code == 200, response.text
    body = response.json()
    [served] = body["assignments"]
    expected = hashing.assign(
        hashing.Definition("checkout", ("control", "v1"), (0.5, 0.5)), "device-1"
    )
    assert expected is not None
    assert served == {
        "experiment": "checkout",
        "variant": expected.variant_key,
        "bucket": expected.bucket,
        "new": True,
    }
    again = (await client.post("/v1/assignment", json={"unit_id": "device-1"})).json()
    assert again["assignments"][0]["variant"] == expected.variant_key
    assert again["assignments"][0]["new"] is False
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Assignment)) == 1


async def test_sticky_across_weight_changes_and_pause_resume(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "sticky", weights=(0.5, 0.5))
    units = [f"unit-{i}" for i in range(200)]
    first = {}
    for unit in units:
        body = (await client.post("/v1/assignment", json={"unit_id": unit})).json()
        first[unit] = body["assignments"][0]["variant"]
    assert set(first.values()) == {"control", "v1"}
    async with db.transaction() as session:
        await q.set_weights(session, "sticky", {"control": 0.05, "v1": 0.95}, actor="test")
        await q.set_status(session, "sticky", ExperimentStatus.PAUSED, actor="test")
    paused = (await client.post("/v1/assignment", json={"unit_id": units[0]})).json()
    assert paused["assignments"] == []
    assert paused["skipped"] == [{"experiment": "sticky", "reason": "experiment is paused"}]
    async with db.transaction() as session:
        await q.set_status(session, "sticky", ExperimentStatus.RUNNING, actor="test")
    for unit in units:
        body = (await client.post("/v1/assignment", json={"unit_id": unit})).json()
        assert body["assignments"][0]["variant"] == first[unit]
        assert body["assignments"][0]["new"] is False
    # New units follow the new weights.
    fresh = []
    for i in range(200):
        body = (await client.post("/v1/assignment", json={"unit_id": f"new-{i}"})).json()
        fresh.append(body["assignments"][0]["variant"])
    assert fresh.count("v1") > 170


async def test_concurrent_first_requests_store_one_assignment(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "race")
    responses = await asyncio.gather(
        *(client.post("/v1/assignment", json={"unit_id": "same-unit"}) for _ in range(20))
    )
    variants = {r.json()["assignments"][0]["variant"] for r in responses}
    assert len(variants) == 1
    assert sum(r.json()["assignments"][0]["new"] for r in responses) == 1


async def test_asked_keys_unknown_draft_and_coverage(
    client: httpx.AsyncClient, db: Database
) -> None:
    await make_experiment(db, "live")
    await make_experiment(db, "drafty", status=ExperimentStatus.DRAFT)
    await make_experiment(db, "nobody", coverage=0.0)
    body = (
        await client.post(
            "/v1/assignment",
            json={"unit_id": "u-9", "experiments": ["live", "drafty", "ghost", "nobody"]},
        )
    ).json()
    assert [a["experiment"] for a in body["assignments"]] == ["live"]
    reasons = {s["experiment"]: s["reason"] for s in body["skipped"]}
    assert reasons == {
        "drafty": "no running experiment with this key",
        "ghost": "no running experiment with this key",
        "nobody": "unit is outside the experiment's coverage",
    }


async def test_bad_requests_are_refused_with_422(client: httpx.AsyncClient) -> None:
    for payload in (
        {},
        {"unit_id": ""},
        {"unit_id": "x" * 201},
        {"unit_id": "a\u0000b"},
        {"unit_id": "a", "extra": 1},
    ):
        response = await client.post("/v1/assignment", json=payload)
        assert response.status_code == 422, payload
