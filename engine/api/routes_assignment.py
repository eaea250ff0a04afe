"""`POST /v1/assignment`: the sticky variant of a unit in running experiments.

The body is bounded before FastAPI reads it (`app.BODY_LIMITS`, `limits.read_body`); invalid
requests are answered by `limits.validation_failed`, which never echoes more than a prefix.

A valid JSON request takes the fast path (`fast_answer`, called by `app.FastPath`): one
pydantic parse of the raw body and an orjson answer, past FastAPI's routing, dependency and
response-model machinery (measured: about half the api's CPU per request). Anything the fast
parse refuses goes on to the FastAPI route, so every refusal (400, 415, 422) is answered by one
code path, and the fast path answers only what the route would answer the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import orjson
from fastapi import APIRouter, Depends
from pydantic import ValidationError

from engine.api.context import ApiContext, context
from engine.api.limits import too_large
from engine.api.schemas import (
    MAX_ASSIGNMENT_BODY_BYTES,
    AssignedVariant,
    AssignmentRequest,
    AssignmentResponse,
    ErrorBody,
    SkippedExperiment,
)
from engine.experiments.assignment import Served, Skipped, assign

router = APIRouter(tags=["app"])
TOO_LARGE = too_large(MAX_ASSIGNMENT_BODY_BYTES, "ask for fewer experiments")


@router.post(
    "/v1/assignment",
    response_model=AssignmentResponse,
    responses={
        400: {"model": ErrorBody, "description": "the body is not valid JSON"},
        413: {
            "model": ErrorBody,
            "description": f"body larger than {MAX_ASSIGNMENT_BODY_BYTES} bytes",
        },
        415: {"model": ErrorBody, "description": "the body is not sent as application/json"},
    },
    openapi_extra={
        "requestBody": {
            "description": f"a JSON object of at most {MAX_ASSIGNMENT_BODY_BYTES} bytes",
        }
    },
)
async def assignment(
    body: AssignmentRequest, ctx: ApiContext = Depends(context)
) -> AssignmentResponse:
    """Variants of `unit_id` in the running experiments asked for (all when omitted).

    A unit keeps its stored variant when weights change or the experiment is paused and
    resumed; a unit without one is bucketed with GrowthBook's hash (FNV-1a 32-bit, v2).
    Paused, stopped, draft and unknown experiments are listed under `skipped`. Invalid fields
    answer 422; each error quotes at most a short prefix of the input.
    """
    served, skipped = await _served(ctx, body.unit_id, body.experiments)
    return AssignmentResponse(
        unit_id=body.unit_id,
        assignments=[
            AssignedVariant(experiment=s.experiment, variant=s.variant, bucket=s.bucket, new=s.new)
            for s in served
        ],
        skipped=[SkippedExperiment(experiment=s.experiment, reason=s.reason) for s in skipped],
    )


async def _served(
    ctx: ApiContext, unit_id: str, keys: Sequence[str] | None
) -> tuple[list[Served], list[Skipped]]:
    definitions = await ctx.definitions.get()
    async with ctx.pool.acquire() as conn:
        try:
            return await assign(conn, definitions, unit_id, keys)
        except asyncpg.ForeignKeyViolationError:
            # An experiment in the cached definitions was deleted: reload them and retry once.
            ctx.definitions.invalidate()
            definitions = await ctx.definitions.get()
            return await assign(conn, definitions, unit_id, keys)


def is_json(content_type: bytes | None) -> bool:
    """`application/json`, with or without parameters: what the fast path parses (a body in
    any other type, or none, goes to FastAPI, which refuses or parses it its own way)."""
    if content_type is None:
        return False
    main, _, params = content_type.partition(b";")
    if main.strip().lower() != b"application/json":
        return False
    charset = params.strip().lower()
    return charset in (b"", b"charset=utf-8", b'charset="utf-8"')


async def fast_answer(ctx: ApiContext, body: bytes) -> bytes | None:
    """The route's 200 answer to a valid JSON body, or None when the body does not validate
    (then FastAPI answers it). Database errors propagate, as they do from the route."""
    try:
        request = AssignmentRequest.model_validate_json(body)
    except ValidationError:
        return None
    served, skipped = await _served(ctx, request.unit_id, request.experiments)
    return orjson.dumps(
        {
            "unit_id": request.unit_id,
            "assignments": [
                {"experiment": s.experiment, "variant": s.variant, "bucket": s.bucket, "new": s.new}
                for s in served
            ],
            "skipped": [{"experiment": s.experiment, "reason": s.reason} for s in skipped],
        }
    )
