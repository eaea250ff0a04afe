"""Metrics reads, from the rollup tables only: a public summary and token-guarded details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.ext.asyncio import AsyncSession

from engine.api.auth import require_dashboard_token
from engine.api.context import ApiContext, context
from engine.api.schemas import (
    MAX_WINDOW_DAYS,
    DailyPoint,
    DailyResponse,
    ErrorBody,
    ExperimentMetrics,
    ExperimentsMetricsResponse,
    FunnelMetrics,
    FunnelsResponse,
    FunnelStep,
    FunnelVariant,
    Interval,
    SrmResult,
    SummaryResponse,
    VariantMetrics,
)
from engine.maths import stats
from storage.models import Experiment
from storage.queries import experiments as q
from storage.queries.experiments import KEY_PATTERN

router = APIRouter(tags=["metrics"])
GUARDED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong x-dashboard-token"},
    503: {"model": ErrorBody, "description": "DASHBOARD_TOKEN is not configured"},
}
WINDOW = Query(14, ge=1, le=MAX_WINDOW_DAYS, description="days, ending today (UTC)")


@router.get("/v1/metrics/summary", response_model=SummaryResponse)
async def summary(ctx: ApiContext = Depends(context)) -> SummaryResponse:
    """Public totals: experiments by status, days and events covered by the daily rollup."""
    async with ctx.db.session() as session:
        s = await q.read_summary(session)
    return SummaryResponse(
        experiments=s.experiments,
        days=s.days,
        first_day=s.first_day,
        last_day=s.last_day,
        events=s.events,
        event_names=s.event_names,
        last_rollup_at=s.last_rollup_at,
    )


@router.get(
    "/v1/metrics/daily",
    response_model=DailyResponse,
    responses=GUARDED,
    dependencies=[Depends(require_dashboard_token)],
)
async def daily(window_days: int = WINDOW, ctx: ApiContext = Depends(context)) -> DailyResponse:
    end = datetime.now(UTC).date()
    start = end - timedelta(days=window_days - 1)
    async with ctx.db.session() as session:
        rows = await q.read_daily(session, start, end)
    return DailyResponse(
        window_days=window_days,
        start=start,
        end=end,
        rows=[
            DailyPoint(day=r.day, event_name=r.event_name, events=r.events, units=r.units)
            for r in rows
        ],
    )


async def _find(session: AsyncSession, ref: str) -> Experiment | None:
    """An experiment by key, or by numeric id."""
    found = await q.get_experiment(session, ref)
    if found is None and ref.isdigit() and len(ref) < 19:
        found = await session.get(Experiment, int(ref))
    return found


def experiment_metrics(
    experiment: Experiment, window_days: int, rows: list[q.VariantRow]
) -> ExperimentMetrics:
    computed = stats.compare(
        [stats.VariantInput(r.variant_key, r.units, r.conversions, r.weight) for r in rows]
    )
    by_key = {r.variant_key: r for r in rows}
    variants = []
    for v in computed.variants:
        variants.append(
            VariantMetrics(
                variant=v.key,
                weight=v.weight,
                units=v.units,
                conversions=v.conversions,
                events=by_key[v.key].events,
                rate=v.rate,
                abs_uplift=v.abs_uplift,
                abs_ci95=Interval(low=v.abs_ci[0], high=v.abs_ci[1]) if v.abs_ci else None,
                rel_uplift=v.rel_uplift,
                rel_ci95=Interval(low=v.rel_ci[0], high=v.rel_ci[1]) if v.rel_ci else None,
                p_value=v.p_value,
                chance_to_beat_control=v.chance_to_beat_control,
                verdict=v.verdict.value,
            )
        )
    srm = computed.srm
    return ExperimentMetrics(
        experiment=experiment.key,
        name=experiment.name,
        status=experiment.status,
        primary_metric=experiment.primary_metric,
        window_days=window_days,
        window_end=rows[0].window_end,
        variants=variants,
        srm=SrmResult(chi2=srm.statistic, p_value=srm.p_value, flagged=srm.flagged)
        if srm
        else None,
        enough_data=computed.enough_data,
        leader=computed.leader,
        notes=computed.notes,
    )


@router.get(
    "/v1/metrics/experiments",
    response_model=ExperimentsMetricsResponse,
    responses={**GUARDED, 404: {"model": ErrorBody, "description": "no such experiment"}},
    dependencies=[Depends(require_dashboard_token)],
)
async def experiments(
    window_days: int = WINDOW,
    experiment_id: str | None = Query(
        None, pattern=KEY_PATTERN, description="experiment key or numeric id; omitted: all"
    ),
    ctx: ApiContext = Depends(context),
) -> ExperimentsMetricsResponse:
    """Per-variant units, conversions, uplift with 95% intervals, chance to beat control,
    the SRM check and the verdict, from the last rollup of this window."""
    async with ctx.db.session() as session:
        if experiment_id is not None:
            found = await _find(session, experiment_id)
            if found is None:
                raise HTTPException(404, f"no experiment {experiment_id!r}")
            chosen = [found]
        else:
            chosen = await q.list_experiments(session)
        out = []
        for experiment in chosen:
            rows = await q.read_experiment_rollup(session, experiment.id, window_days)
            if rows:
                out.append(experiment_metrics(experiment, window_days, rows))
    if experiment_id is not None and not out:
        raise HTTPException(
            404,
            f"no rollup of {experiment_id!r} over {window_days} days yet: run "
            f"`creatordeck rollup --window-days {window_days}`",
        )
    return ExperimentsMetricsResponse(window_days=window_days, experiments=out)


def funnel_metrics(rows: list[q.FunnelRow]) -> list[FunnelMetrics]:
    grouped: dict[tuple[str, str], dict[str, list[q.FunnelRow]]] = {}
    for r in rows:
        grouped.setdefault((r.experiment_key, r.funnel_name), {}).setdefault(
            r.variant_key, []
        ).append(r)
    out = []
    for (experiment, funnel), variants in grouped.items():
        built = []
        for variant, steps in variants.items():
            first = steps[0].units if steps else 0
            built.append(
                FunnelVariant(
                    variant=variant,
                    steps=[
                        FunnelStep(
                            step=s.step,
                            name=s.step_name,
                            units=s.units,
                            conversion_from_first=(s.units / first) if first else None,
                        )
                        for s in steps
                    ],
                )
            )
        window_end = next(iter(variants.values()))[0].window_end
        out.append(
            FunnelMetrics(
                experiment=experiment, funnel=funnel, window_end=window_end, variants=built
            )
        )
    return out


@router.get(
    "/v1/metrics/funnels",
    response_model=FunnelsResponse,
    responses=GUARDED,
    dependencies=[Depends(require_dashboard_token)],
)
async def funnels(
    window_days: int = WINDOW,
    funnel_name: str | None = Query(
        None, pattern=KEY_PATTERN, description="funnel name; omitted: all funnels"
    ),
    ctx: ApiContext = Depends(context),
) -> FunnelsResponse:
    """Units reaching each ordered step, per experiment variant."""
    async with ctx.db.session() as session:
        rows = await q.read_funnels(session, window_days, funnel_name)
    return FunnelsResponse(window_days=window_days, funnels=funnel_metrics(rows))
