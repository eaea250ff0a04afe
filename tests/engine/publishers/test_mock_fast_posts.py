"""The mock platform answers POST /publishing/v1/{account}/posts on its fast path (before
FastAPI's router) exactly as its FastAPI route does: same status, body and headers, for a new
post, a replay, a refused body, a missing token and each scripted fault."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from engine.mock_platform.fast_posts import FastPosts
from engine.mock_platform.publish import FaultConfig, PublishState, build_router

SCRIPT = ["ok", "ok", "rate_limited", "unavailable", "server_error", "rejected", "unauthorized"]
REQUESTS: list[dict[str, Any]] = [
    {"json": {"text": "hello"}, "key": "k1"},
    {"json": {"text": "hello"}, "key": "k1"},  # a replay: 200, the same post
    {"json": {"text": ""}, "key": "k2"},  # refused by the body model: 422
    {"json": {"text": "no token"}, "key": "k3", "token": None},  # 401
    {"json": {"text": "dé"}, "key": "k4"},
    *({"json": {"text": f"fault {n}"}, "key": f"f{n}"} for n in range(5)),
]


KEPT_HEADERS = ("retry-after", "idempotent-replayed")


def app_for(state: PublishState, fast: bool, route: bool = True) -> FastAPI:
    app = FastAPI()
    if route:
        app.include_router(build_router(state))
    if fast:
        app.add_middleware(FastPosts, state=state)
    return app


async def answers(fast: bool) -> tuple[list[tuple[int, Any, dict[str, str]]], dict[str, Any]]:
    state = PublishState(config=FaultConfig(script=list(SCRIPT), retry_after_s=3))
    # The fast app has no route: every answer it gives is the fast path's.
    transport = httpx.ASGITransport(app=app_for(state, fast, route=not fast))
    seen = []
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        for req in REQUESTS:
            token = req.get("token", "t")
            headers = {"Idempotency-Key": req["key"]}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            r = await client.post("/publishing/v1/acc%201/posts", json=req["json"], headers=headers)
            body = r.json()
            if isinstance(body, dict):
                body = {k: v for k, v in body.items() if k not in ("id", "created_at", "url")}
                assert "url" not in r.json() or r.json()["url"].startswith("http://mock.test/")
            kept = {k: v for k, v in r.headers.items() if k in KEPT_HEADERS}
            seen.append((r.status_code, body, kept | {"type": r.headers["content-type"]}))
    return seen, state.stats()


async def test_the_fast_path_answers_as_the_route_does() -> None:
    fast, fast_stats = await answers(fast=True)
    route, route_stats = await answers(fast=False)
    assert fast == route
    assert fast_stats == route_stats
    statuses = [status for status, _, _ in fast]
    assert statuses == [201, 200, 422, 401, 201, 429, 503, 500, 400, 401]
    assert fast[1][2]["idempotent-replayed"] == "true"
    assert fast[5][2]["retry-after"] == "3"
    assert fast[0][1]["account"] == "acc 1"  # the path's account, decoded
    assert fast[4][1]["text"] == "dé"


async def test_other_routes_go_on_to_fastapi() -> None:
    state = PublishState()
    transport = httpx.ASGITransport(app=app_for(state, fast=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
        made = await client.post(
            "/publishing/v1/a/posts", json={"text": "x"}, headers={"Authorization": "Bearer t"}
        )
        listed = await client.get("/publishing/v1/a/posts", headers={"Authorization": "Bearer t"})
        missing = await client.post("/publishing/v1/a/other", json={})
    assert made.status_code == 201
    assert listed.status_code == 200 and [p["text"] for p in listed.json()["data"]] == ["x"]
    assert missing.status_code == 404
