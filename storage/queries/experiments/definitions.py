"""Experiment definitions: validated input, audited edits and status transitions.

Every edit locks the experiment's row, writes an audit row with the before and after snapshot,
and flushes; none commits (the caller owns the transaction).

Versions: every edit bumps `experiment.version`. An edit may say which version it was made
against (`version=`, what the console showed); under the row lock (two racing edits queue) it is
refused with `ExperimentChanged` when the experiment has moved on since, naming who changed it,
when, and what it is now (status and weights), instead of overwriting their change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.models import (
    Experiment,
    ExperimentFunnel,
    ExperimentStatus,
    ExperimentVariant,
    Role,
)
from storage.permissions import Actor
from storage.queries import audit, audit_log
from storage.user_error import UserError

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
EVENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$"
WEIGHT_TOLERANCE = 1e-6


class ExperimentError(ValueError, UserError):
    """An edit that cannot be made, with the reason."""

    title = "experiment edit refused"


class ExperimentChanged(ExperimentError):
    """The experiment changed since the version the edit was made against: who, when, and what
    it is now, so the person can look again before deciding."""

    title = "changed by someone else"


def describe(experiment: Experiment) -> str:
    """What an experiment is now, in one line: its status and its weights."""
    weights = " ".join(f"{v.key}={v.weight:g}" for v in experiment.variants)
    return f"{experiment.status}, weights {weights}"


class VariantInput(BaseModel):
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(default="", max_length=200)
    weight: float = Field(ge=0, le=1)


class FunnelInput(BaseModel):
    name: str = Field(pattern=KEY_PATTERN)
    steps: list[str] = Field(min_length=2, max_length=20)

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[str]) -> list[str]:
        for step in steps:
            if not re.match(EVENT_NAME_PATTERN, step):
                raise ValueError(f"funnel step {step!r} is not an event name")
        return steps


def check_weights(weights: Sequence[float]) -> None:
    if any(not 0 <= w <= 1 or math.isnan(w) for w in weights):
        raise ExperimentError("every weight is between 0 and 1")
    total = sum(weights)
    if abs(total - 1) > WEIGHT_TOLERANCE:
        raise ExperimentError(f"weights sum to {total:.6g}; they must sum to 1")


class ExperimentInput(BaseModel):
    """An experiment as typed by a person or seeded: validated before anything is written."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    hypothesis: str = Field(default="", max_length=5000)
    primary_metric: str = Field(pattern=EVENT_NAME_PATTERN)
    coverage: float = Field(default=1.0, ge=0, le=1)
    seed: str | None = Field(default=None, max_length=200)
    hash_version: int = Field(default=2, ge=1, le=2)
    variants: list[VariantInput] = Field(min_length=2, max_length=20)
    funnels: list[FunnelInput] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentInput:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        names = [f.name for f in self.funnels]
        if len(set(names)) != len(names):
            raise ValueError("funnel names must be unique")
        check_weights([v.weight for v in self.variants])
        return self


def snapshot(experiment: Experiment) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "coverage": experiment.coverage,
        "seed": experiment.seed,
        "hash_version": experiment.hash_version,
        "primary_metric": experiment.primary_metric,
        "variants": [
            {"key": v.key, "name": v.name, "weight": v.weight} for v in experiment.variants
        ],
        "funnels": [{"name": f.name, "steps": list(f.steps)} for f in experiment.funnels],
    }


async def list_experiments(session: AsyncSession) -> list[Experiment]:
    rows = await session.scalars(select(Experiment).order_by(Experiment.id))
    return list(rows)


async def get_experiment(session: AsyncSession, key: str) -> Experiment | None:
    result: Experiment | None = await session.scalar(
        select(Experiment).where(Experiment.key == key)
    )
    return result


async def _require(
    session: AsyncSession, key: str, lock: bool = True, version: int | None = None
) -> Experiment:
    """The experiment (locked), refused with ExperimentChanged when it is no longer at
    `version` (None: no check)."""
    stmt = select(Experiment).where(Experiment.key == key).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    experiment: Experiment | None = await session.scalar(stmt)
    if experiment is None:
        raise ExperimentError(f"no experiment {key!r}")
    if version is not None and experiment.version != version:
        last = await audit_log.latest_change(session, "experiment", key)
        who = f" by {last.actor} at {last.at:%H:%M} UTC" if last is not None else ""
        raise ExperimentChanged(
            f"{key} changed{who} (version {version} → {experiment.version}): "
            f"now {describe(experiment)}"
        )
    return experiment


async def create_experiment(
    session: AsyncSession, data: ExperimentInput, *, actor: Actor
) -> Experiment:
    permissions.require(actor, Role.EDITOR, "edit experiments")
    if await get_experiment(session, data.key) is not None:
        raise ExperimentError(f"experiment {data.key!r} already exists")
    experiment = Experiment(
        key=data.key,
        name=data.name,
        hypothesis=data.hypothesis,
        primary_metric=data.primary_metric,
        coverage=data.coverage,
        seed=data.seed,
        hash_version=data.hash_version,
        status=ExperimentStatus.DRAFT.value,
        variants=[
            ExperimentVariant(key=v.key, name=v.name or v.key, weight=v.weight, position=i)
            for i, v in enumerate(data.variants)
        ],
        funnels=[ExperimentFunnel(name=f.name, steps=list(f.steps)) for f in data.funnels],
    )
    session.add(experiment)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="experiment",
        entity_id=data.key,
        before=None,
        after=snapshot(experiment),
    )
    return experiment


TRANSITIONS: dict[str, set[str]] = {
    ExperimentStatus.DRAFT: {ExperimentStatus.RUNNING, ExperimentStatus.STOPPED},
    ExperimentStatus.RUNNING: {ExperimentStatus.PAUSED, ExperimentStatus.STOPPED},
    ExperimentStatus.PAUSED: {ExperimentStatus.RUNNING, ExperimentStatus.STOPPED},
    ExperimentStatus.STOPPED: set(),
}


async def set_status(
    session: AsyncSession,
    key: str,
    status: ExperimentStatus,
    *,
    actor: Actor,
    version: int | None = None,
) -> Experiment:
    """Move to `status` if TRANSITIONS allows it. `version`: the version the change was made
    against (ExperimentChanged when the experiment is no longer at it; None: no check)."""
    permissions.require(actor, Role.EDITOR, "edit experiments")
    experiment = await _require(session, key, version=version)
    allowed = TRANSITIONS[ExperimentStatus(experiment.status)]
    if status not in allowed:
        choices = ", ".join(sorted(allowed)) or "nothing (stopped is final)"
        raise ExperimentError(
            f"{key} is {experiment.status}; it can go to {choices}, not {status.value}"
        )
    before = snapshot(experiment)
    now = await session.scalar(select(text("now()")))
    experiment.status = status.value
    experiment.updated_at = now
    experiment.version += 1
    if status == ExperimentStatus.RUNNING and experiment.started_at is None:
        experiment.started_at = now
    if status == ExperimentStatus.STOPPED:
        experiment.stopped_at = now
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"status:{status.value}",
        entity="experiment",
        entity_id=key,
        before=before,
        after=snapshot(experiment),
    )
    return experiment


async def set_weights(
    session: AsyncSession,
    key: str,
    weights: dict[str, float],
    *,
    actor: Actor,
    version: int | None = None,
) -> Experiment:
    """New weights for every variant (summing to 1). Units already assigned keep their variant.
    `version` as for set_status."""
    permissions.require(actor, Role.EDITOR, "edit experiments")
    experiment = await _require(session, key, version=version)
    if experiment.status == ExperimentStatus.STOPPED:
        raise ExperimentError(f"{key} is stopped; its weights are final")
    known = {v.key for v in experiment.variants}
    if set(weights) != known:
        raise ExperimentError(f"give a weight for each of {', '.join(sorted(known))}")
    check_weights(list(weights.values()))
    before = snapshot(experiment)
    for variant in experiment.variants:
        variant.weight = weights[variant.key]
    experiment.updated_at = await session.scalar(select(text("now()")))
    experiment.version += 1
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="weights",
        entity="experiment",
        entity_id=key,
        before=before,
        after=snapshot(experiment),
    )
    return experiment


async def add_variant(
    session: AsyncSession,
    key: str,
    variant_key: str,
    name: str = "",
    *,
    actor: Actor,
    version: int | None = None,
) -> Experiment:
    """Add an arm to a draft; weights are rebalanced to an equal split (edit them after).
    `version` as for set_status."""
    permissions.require(actor, Role.EDITOR, "edit experiments")
    experiment = await _require(session, key, version=version)
    if experiment.status != ExperimentStatus.DRAFT:
        raise ExperimentError(f"{key} is {experiment.status}; variants are added while draft")
    checked = VariantInput(key=variant_key, name=name, weight=0)
    if any(v.key == checked.key for v in experiment.variants):
        raise ExperimentError(f"{key} already has a variant {checked.key!r}")
    before = snapshot(experiment)
    experiment.variants.append(
        ExperimentVariant(
            key=checked.key,
            name=checked.name or checked.key,
            weight=0.0,
            position=len(experiment.variants),
        )
    )
    count = len(experiment.variants)
    for variant in experiment.variants:
        variant.weight = 1.0 / count
    experiment.updated_at = await session.scalar(select(text("now()")))
    experiment.version += 1
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="add_variant",
        entity="experiment",
        entity_id=key,
        before=before,
        after=snapshot(experiment),
    )
    return experiment
