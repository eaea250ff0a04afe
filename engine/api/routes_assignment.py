"""`POST /v1/assignment`: the sticky variant of a unit in running experiments.

The body is bounded before FastAPI reads it (`app.BODY_LIMITS`, `limits.read_body`); invalid
requests are answered by `limits.validation_failed`, which never echoes more than a prefix.
"""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Depends

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
from engine.experiments.assignment import assign

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
    definitions = await ctx.definitions.get()
    async with ctx.pool.acquire() as conn:
        try:
            served, skipped = await assign(conn, definitions, body.unit_id, body.experiments)
        except asyncpg.ForeignKeyViolationError:
            # An experiment in the cached definitions was deleted: reload them and retry once.
            ctx.definitions.invalidate()
            definitions = await ctx.definitions.get()
            served, skipped = await assign(conn, definitions, body.unit_id, body.experiments)
    return AssignmentResponse(
        unit_id=body.unit_id,
        assignments=[
            AssignedVariant(experiment=s.experiment, variant=s.variant, bucket=s.bucket, new=s.new)
            for s in served
        ],
        skipped=[SkippedExperiment(experiment=s.experiment, reason=s.reason) for s in skipped],
    )
