from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Computed, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, created_at_column


class OverlapPolicy(StrEnum):
    SKIP = "skip"  # a tick that fires while the previous one runs is recorded as skipped
    BUFFER = "buffer"  # ... waits for it, at most one waiting


class CatchupPolicy(StrEnum):
    RUN_ONCE = "run_once"  # fire times missed while no engine ran coalesce into one run
    MISSED = "missed"  # ... are recorded as missed


class Region(Base):
    __tablename__ = "region"
    __table_args__ = (
        CheckConstraint("overlap_policy in ('skip', 'buffer')", name="overlap_policy"),
        CheckConstraint("catchup_policy in ('run_once', 'missed')", name="catchup_policy"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    # [min_lon, min_lat, max_lon, max_lat]
    bbox: Mapped[list[float] | None] = mapped_column(JSONB, default=None)
    overlap_policy: Mapped[str] = mapped_column(
        String(16), default=OverlapPolicy.SKIP, server_default=OverlapPolicy.SKIP.value
    )
    catchup_policy: Mapped[str] = mapped_column(
        String(16), default=CatchupPolicy.RUN_ONCE, server_default=CatchupPolicy.RUN_ONCE.value
    )
    catchup_window_s: Mapped[int] = mapped_column(default=86_400, server_default="86400")
    misfire_grace_s: Mapped[int] = mapped_column(default=60, server_default="60")
    # Fire times before this instant are not owed: set on create, schedule change and resume.
    schedule_since: Mapped[datetime] = mapped_column(server_default=func.now())
    # First 32 bits of md5(code): tick shard = shard_key % TICK_SHARDS (engine.tick_queue.shard_of).
    shard_key: Mapped[int] = mapped_column(
        BigInteger, Computed("(('x' || substr(md5(code), 1, 8))::bit(32)::bigint)", persisted=True)
    )
    # Writes so far (1 on insert, +1 per change through storage.queries.regions): an edit made
    # against an older version is refused (storage.queries.regions.RegionChanged).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
