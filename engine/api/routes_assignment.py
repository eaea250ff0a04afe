"""`POST /v1/assignment`: the sticky variant of a unit in running experiments."""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Depends

from engine.api.context import ApiContext, context
from engine.api.schemas import (
    AssignedVariant,
    AssignmentRequest,
    AssignmentResponse,
    SkippedExperiment,
)
from engine.experiments.assignment import assign

router = APIRouter(tags=["app"])


@router.post("/v1/assignment", response_model=AssignmentResponse)
async def assignment(
    body: AssignmentRequest, ctx: ApiContext = Depends(context)
) -> AssignmentResponse:
    """Variants of `unit_id` in the running experiments asked for (all when omitted).

    A unit keeps its stored variant when weights change or the experiment is paused and
    resumed; a unit without one is bucketed with GrowthBook's hash (FNV-1a 32-bit, v2).
    Paused, stopped, draft and unknown experiments are listed under `skipped`.
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
