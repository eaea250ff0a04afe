"""Tracked creators, their follower time series, and each fetch batch's outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, created_at_column


class TrackedPlatform(StrEnum):
    MOCK = "mock"
    YOUTUBE = "youtube"
    X = "x"
    INSTAGRAM = "instagram"


class CreatorStatus(StrEnum):
    ACTIVE = "active"  # fetched on its region's ticks
    PAUSED = "paused"  # kept, not fetched
    GONE = "gone"  # the platform says the account no longer exists (404)
    NEEDS_AUTH = "needs_auth"  # the platform refused our credentials for it (401/403)


class Creator(Base):
    """A creator's account on one platform. Contact is a link, never an email or phone."""

    __tablename__ = "creator"
    __table_args__ = (
        UniqueConstraint("platform", "external_id", name="uq_creator_platform_external"),
        CheckConstraint("status in ('active', 'paused', 'gone', 'needs_auth')", name="status"),
        # The tick's "due creators" scan. No index on the columns each fetch rewrites, so the
        # per-fetch UPDATE stays a HOT update.
        Index("ix_creator_region_status", "region_code", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(300))
    region_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("region.code", ondelete="SET NULL")
    )
    contact_url: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(
        String(16), default=CreatorStatus.ACTIVE, server_default=CreatorStatus.ACTIVE.value
    )
    etag: Mapped[str | None] = mapped_column(String(200))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_fetched_at: Mapped[datetime | None]
    # The sampling slot of the last successful check: a re-run of the same slot skips it.
    last_slot_at: Mapped[datetime | None]
    followers: Mapped[int | None] = mapped_column(BigInteger)
    following: Mapped[int | None] = mapped_column(BigInteger)
    posts: Mapped[int | None] = mapped_column(BigInteger)
    views: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class FollowerSample(Base):
    """One row per creator per sampling slot (`observed_at` is the slot's start)."""

    __tablename__ = "follower_sample"
    # Monthly partitions (migration 0007, storage/partitions.py).
    __table_args__ = {"postgresql_partition_by": "RANGE (observed_at)"}

    creator_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("creator.id", ondelete="CASCADE"), primary_key=True
    )
    observed_at: Mapped[datetime] = mapped_column(primary_key=True)
    followers: Mapped[int | None] = mapped_column(BigInteger)
    following: Mapped[int | None] = mapped_column(BigInteger)
    posts: Mapped[int | None] = mapped_column(BigInteger)
    views: Mapped[int | None] = mapped_column(BigInteger)


class FetchBatch(Base):
    """What one fetch job did for one tick: its counts are summed into the tick's ledger row."""

    __tablename__ = "fetch_batch"

    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("job_run.id", ondelete="CASCADE"), primary_key=True
    )
    batch_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # done | deferred | failed
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime] = mapped_column(server_default=func.now())
