"""The mock platform's post metrics: growing numbers for the posts the publishing mock stored.

    GET  /publishing/v1/{account}/metrics?ids=a,b,c   at most 50 ids; unknown ids are left out
    POST /publishing/_control/metrics-faults          {"script": ["unavailable", "ok", ...]}
    GET  /publishing/_control/metrics-stats           calls, ids read, faults served

Numbers are a deterministic function of the post id and the post's age on the mock's clock
(never decreasing as the clock moves), so a test knows what a read at a given time answers.
`script` faults are served first, in order: `unavailable` (503), `rate_limited` (429 +
Retry-After: 1), `unauthorized` (401); "ok" for none.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from engine.mock_platform.publish import PublishState, _check_token

MAX_IDS = 50


class MetricsFaults(BaseModel):
    script: list[str] = []


@dataclass
class MetricsState:
    posts: PublishState
    clock: Callable[[], float] = time.time
    script: list[str] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)


def counts_at(post_id: str, age_s: float) -> dict[str, int]:
    """The post's counts `age_s` seconds after it was made: growing, deterministic."""
    digest = hashlib.sha256(post_id.encode()).digest()
    rate = 50 + digest[0] * 2  # views in the first hour: 50..560
    hours = max(age_s, 0.0) / 3600.0
    views = int(rate * hours**0.8)
    return {
        "views": views,
        "likes": views * (2 + digest[1] % 7) // 100,
        "comments": views * (1 + digest[2] % 3) // 200,
        "shares": views * (1 + digest[3] % 4) // 300,
    }


def _fault(kind: str) -> JSONResponse | None:
    if kind == "unavailable":
        return JSONResponse({"error": "service unavailable"}, status_code=503)
    if kind == "rate_limited":
        return JSONResponse({"error": "too many requests"}, 429, headers={"Retry-After": "1"})
    if kind == "unauthorized":
        return JSONResponse({"error": "token expired"}, status_code=401)
    return None


def build_router(state: MetricsState) -> APIRouter:
    router = APIRouter(prefix="/publishing", tags=["publishing-metrics"])

    @router.get("/v1/{account}/metrics", response_model=None)
    async def metrics(
        account: str, ids: str = "", authorization: str | None = Header(default=None)
    ) -> JSONResponse | dict[str, Any]:
        _check_token(state.posts, authorization)
        state.counters["calls"] += 1
        if state.script:
            fault = _fault(state.script.pop(0))
            if fault is not None:
                state.counters["faults"] += 1
                return fault
        wanted = [i for i in ids.split(",") if i]
        if not wanted or len(wanted) > MAX_IDS:
            message = f"ids: 1 to {MAX_IDS} comma-separated post ids"
            return JSONResponse({"error": message}, status_code=400)
        state.counters["ids"] += len(wanted)
        now = state.clock()
        posts = {p.id: p for p in state.posts.posts if p.account == account}
        data = []
        for post_id in wanted:
            post = posts.get(post_id)
            if post is not None:
                age = now - datetime.fromisoformat(post.created_at).timestamp()
                data.append({"id": post_id, **counts_at(post_id, age)})
        return {"data": data}

    @router.post("/_control/metrics-faults")
    async def set_faults(faults: MetricsFaults) -> dict[str, Any]:
        state.script = list(faults.script)
        return {"script": state.script}

    @router.get("/_control/metrics-stats")
    async def stats() -> dict[str, Any]:
        return dict(state.counters)

    return router
