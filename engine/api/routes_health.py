"""`GET /health`: can this api reach Postgres and Redis?"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from engine.api.context import ApiContext, context
from engine.api.schemas import HealthResponse

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


async def _check(coro: object) -> str:
    try:
        await asyncio.wait_for(coro, timeout=CHECK_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "a dependency is unreachable"}},
)
async def health(ctx: ApiContext = Depends(context)) -> JSONResponse:
    database, redis = await asyncio.gather(
        _check(ctx.pool.fetchval("SELECT 1")), _check(ctx.redis.ping())
    )
    ok = database == "ok" and redis == "ok"
    body = HealthResponse(status="ok" if ok else "degraded", database=database, redis=redis)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
