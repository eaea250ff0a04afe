"""Experiments: definitions, sticky assignments, the event log, rollup tables and their runs.

Rollup tables hold integer counts only (statistics are computed on read), and no timestamps of
the run that wrote them: re-running a window must leave them byte-identical.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base, created_at_column


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Experiment(Base):
    __tablename__ = "experiment"
    __table_args__ = (
        CheckConstraint("status in ('draft', 'running', 'paused', 'stopped')", name="status"),
        CheckConstraint("coverage >= 0 and coverage <= 1", name="coverage"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(
        String(16), default=ExperimentStatus.DRAFT, server_default="draft"
    )
    coverage: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    # GrowthBook's seed: the experiment key when unset.
    seed: Mapped[str | None] = mapped_column(String(200))
    hash_version: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    primary_metric: Mapped[str] = mapped_column(String(100))
    # Edits so far (1 on insert, +1 per status, weights or variant change through
    # storage.queries.experiments.definitions): an edit made against an older version is refused
    # (storage.queries.experiments.ExperimentChanged).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]

    variants: Mapped[list[ExperimentVariant]] = relationship(
        order_by="ExperimentVariant.position", lazy="selectin", cascade="all, delete-orphan"
    )
    funnels: Mapped[list[ExperimentFunnel]] = relationship(
        order_by="ExperimentFunnel.name", lazy="selectin", cascade="all, delete-orphan"
    )


class ExperimentVariant(Base):
    """One arm; position 0 is the control. Weights of an experiment sum to 1."""

    __tablename__ = "experiment_variant"
    __table_args__ = (
        UniqueConstraint("experiment_id", "key", name="uq_experiment_variant_key"),
        UniqueConstraint("experiment_id", "position", name="uq_experiment_variant_position"),
        CheckConstraint("weight >= 0 and weight <= 1", name="weight"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    weight: Mapped[float] = mapped_column(Float)
    position: Mapped[int] = mapped_column(Integer)


class ExperimentFunnel(Base):
    """A named, ordered list of event names; a unit reaches step k after reaching step k-1."""

    __tablename__ = "experiment_funnel"
    __table_args__ = (UniqueConstraint("experiment_id", "name", name="uq_experiment_funnel_name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    steps: Mapped[list[str]] = mapped_column(JSONB)


class Assignment(Base):
    """The sticky variant of a unit (device or user) in an experiment, stored once."""

    __tablename__ = "assignment"
    __table_args__ = (Index("ix_assignment_experiment", "experiment_id", "variant_key"),)

    unit_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    variant_key: Mapped[str] = mapped_column(String(100))
    bucket: Mapped[float] = mapped_column(Float)
    assigned_at: Mapped[datetime] = created_at_column()


class Event(Base):
    """One event from the app, deduplicated by its id and enriched with the unit's assignments."""

    __tablename__ = "event_log"
    __table_args__ = (
        # Both times grow with insertion order, so BRIN indexes cost almost nothing on ingest.
        Index("ix_event_log_occurred_at", "occurred_at", postgresql_using="brin"),
        Index("ix_event_log_received_at", "received_at", postgresql_using="brin"),
        # Daily partitions (migration 0007, storage/partitions.py): the key includes the time.
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(100))
    # The device's time corrected by the batch's clock skew (server receive time - sent_at).
    occurred_at: Mapped[datetime] = mapped_column(primary_key=True)
    client_ts: Mapped[datetime]
    received_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # {experiment key: variant key} of the unit when the event arrived.
    assignments: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)


class DailyRollup(Base):
    __tablename__ = "rollup_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    event_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    units: Mapped[int] = mapped_column(BigInteger)


class ExperimentRollup(Base):
    """Per experiment and variant over a window of days ending on `window_end` (inclusive)."""

    __tablename__ = "rollup_experiment"

    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    variant_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_end: Mapped[date] = mapped_column(Date)
    units: Mapped[int] = mapped_column(BigInteger)
    conversions: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(BigInteger)


class FunnelRollup(Base):
    __tablename__ = "rollup_funnel"

    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    funnel_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    variant_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_end: Mapped[date] = mapped_column(Date)
    step_name: Mapped[str] = mapped_column(String(100))
    units: Mapped[int] = mapped_column(BigInteger)


class RollupRun(Base):
    """One run of a rollup job: what window, how long, what it wrote, and the tables' checksum."""

    __tablename__ = "rollup_runs"
    __table_args__ = (Index("ix_rollup_runs_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32))
    window_days: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    incremental: Mapped[bool] = mapped_column(default=False, server_default="false")
    started_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    # The newest received_at the run saw: the next incremental run looks at events after it.
    watermark: Mapped[datetime | None]
    rows_written: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(32), default="cli", server_default="cli")
    error: Mapped[str | None] = mapped_column(Text)
