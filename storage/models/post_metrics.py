"""How a published post did: one row per (publication, schedule step), a small time series.

`step_s` is the schedule step (seconds after `published_at`: 1 h, 6 h, 24 h, 7 d by default,
settings.post_metrics.steps_s) the row answers; the unique (publication, step) makes a re-run of
the same due step write nothing. Counts are nullable: a platform reports what it reports
(X has no views for some posts, Instagram no shares for images).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class PostMetric(Base):
    __tablename__ = "post_metric"
    __table_args__ = (
        UniqueConstraint("publication_id", "step_s", name="uq_post_metric_step"),
        Index("ix_post_metric_publication", "publication_id", "fetched_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id", ondelete="CASCADE"))
    step_s: Mapped[int]
    fetched_at: Mapped[datetime]
    views: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    shares: Mapped[int | None] = mapped_column(BigInteger)
