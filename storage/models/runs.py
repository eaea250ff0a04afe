from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class RunStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSED = "missed"
    QUEUED = "queued"  # a backfill fire time asked for, not started
    CANCELLED = "cancelled"  # a queued backfill fire time called off before it started


FINAL_STATUSES = (RunStatus.OK, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.MISSED)


class JobRun(Base):
    """The run ledger: one row per (kind, region, fire time), whatever the number of replicas."""

    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("kind", "region_code", "scheduled_for", name="uq_job_run_fire"),
        Index("ix_job_run_region_scheduled", "region_code", "scheduled_for"),
        Index("ix_job_run_scheduled", "scheduled_for"),
        Index("ix_job_run_status", "status", postgresql_where="status = 'running'"),
        Index(
            "ix_job_run_queued",
            "region_code",
            "scheduled_for",
            postgresql_where="status = 'queued'",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str | None] = mapped_column(String(64))
    scheduled_for: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    lag_ms: Mapped[int | None]
    duration_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(default=1, server_default="1")
    worker: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(300))
    manual: Mapped[bool] = mapped_column(default=False, server_default="false")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # NULL until the tick has enqueued its fetch batches; the last batch to report completes it.
    batches_expected: Mapped[int | None] = mapped_column(Integer)
    batches_reported: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    trigger: Mapped[str | None] = mapped_column(String(16))  # 'backfill', else NULL
    requested_by: Mapped[str | None] = mapped_column(String(200))  # who asked (a backfill)
