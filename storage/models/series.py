"""Downsampled follower series (storage/queries/series.py writes and reads them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class FollowerSeries(Base):
    """A creator's closing stats per hour or day (the bucket's last sample)."""

    __tablename__ = "follower_series"
    __table_args__ = (
        CheckConstraint("resolution in ('hour', 'day')", name="ck_follower_series_resolution"),
    )

    creator_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("creator.id", ondelete="CASCADE"), primary_key=True
    )
    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    followers: Mapped[int | None] = mapped_column(BigInteger)
    following: Mapped[int | None] = mapped_column(BigInteger)
    posts: Mapped[int | None] = mapped_column(BigInteger)
    views: Mapped[int | None] = mapped_column(BigInteger)


class DownsampleState(Base):
    """Buckets of `resolution` before `done_until` are complete in follower_series; a chart
    reads raw samples only from there on."""

    __tablename__ = "downsample_state"

    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    done_until: Mapped[datetime]
