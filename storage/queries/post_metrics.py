"""Queries of the post-metrics time series (`post_metric`). None commits: the caller owns the
transaction.

`metric_candidates` is the engine's scan: published publications with a platform post id,
published within the window, with the largest step already read. It reads the publications of
the window (bounded by `limit`) and the metric rows of those only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Connection, ConnectionStatus, PostMetric, Publication, PublicationStatus


@dataclass(frozen=True, slots=True)
class MetricCandidate:
    """A published publication that may be due for a metrics read."""

    publication_id: int
    connection_id: int
    platform: str
    account_id: str
    token_encrypted: str
    external_id: str
    published_at: datetime
    last_step_s: int | None  # the largest step already read, None: none yet


@dataclass(frozen=True, slots=True)
class MetricRow:
    publication_id: int
    step_s: int
    fetched_at: datetime
    views: int | None
    likes: int | None
    comments: int | None
    shares: int | None


async def metric_candidates(
    session: AsyncSession,
    published_after: datetime,
    published_before: datetime,
    final_step_s: int,
    limit: int,
) -> list[MetricCandidate]:
    """Published publications with a platform id, published in [after, before], whose final
    step is not read yet, oldest first."""
    last = (
        select(PostMetric.publication_id, func.max(PostMetric.step_s).label("last_step_s"))
        .group_by(PostMetric.publication_id)
        .subquery()
    )
    stmt = (
        select(
            Publication.id,
            Publication.connection_id,
            Connection.platform,
            Connection.account_id,
            Connection.token_encrypted,
            Publication.external_id,
            Publication.published_at,
            last.c.last_step_s,
        )
        .join(Connection, Connection.id == Publication.connection_id)
        .outerjoin(last, last.c.publication_id == Publication.id)
        .where(
            Publication.status == PublicationStatus.PUBLISHED.value,
            Publication.external_id.is_not(None),
            Connection.status == ConnectionStatus.OK.value,  # needs re-auth: nothing to read
            Publication.published_at >= published_after,
            Publication.published_at <= published_before,
            or_(last.c.last_step_s.is_(None), last.c.last_step_s < final_step_s),
        )
        .order_by(Publication.published_at, Publication.id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    return [
        MetricCandidate(
            publication_id=r[0],
            connection_id=r[1],
            platform=r[2],
            account_id=r[3],
            token_encrypted=r[4],
            external_id=r[5],
            published_at=r[6],
            last_step_s=r[7],
        )
        for r in rows
    ]


async def insert_metrics(session: AsyncSession, rows: Sequence[MetricRow]) -> int:
    """Write the rows; a (publication, step) already read is skipped. Returns rows written."""
    if not rows:
        return 0
    stmt = (
        insert(PostMetric)
        .values(
            [
                {
                    "publication_id": r.publication_id,
                    "step_s": r.step_s,
                    "fetched_at": r.fetched_at,
                    "views": r.views,
                    "likes": r.likes,
                    "comments": r.comments,
                    "shares": r.shares,
                }
                for r in rows
            ]
        )
        .on_conflict_do_nothing(constraint="uq_post_metric_step")
        .returning(PostMetric.id)
    )
    return len((await session.execute(stmt)).all())


async def series_of_post(session: AsyncSession, post_id: int) -> list[MetricRow]:
    """Every metrics row of a post's publications, oldest first (the console's chart)."""
    stmt = (
        select(PostMetric)
        .join(Publication, Publication.id == PostMetric.publication_id)
        .where(Publication.post_id == post_id)
        .order_by(PostMetric.fetched_at, PostMetric.id)
    )
    return [
        MetricRow(
            publication_id=m.publication_id,
            step_s=m.step_s,
            fetched_at=m.fetched_at,
            views=m.views,
            likes=m.likes,
            comments=m.comments,
            shares=m.shares,
        )
        for m in (await session.execute(stmt)).scalars()
    ]


async def latest_views(session: AsyncSession, post_ids: Sequence[int]) -> dict[int, int]:
    """Each post's views at its latest read, summed over its publications (posts with no
    reported views are absent). One index scan per publication of the given posts."""
    if not post_ids:
        return {}
    latest = (
        select(Publication.post_id, PostMetric.views)
        .join(Publication, Publication.id == PostMetric.publication_id)
        .where(Publication.post_id.in_(post_ids))
        .ext(distinct_on(PostMetric.publication_id))
        .order_by(PostMetric.publication_id, PostMetric.fetched_at.desc(), PostMetric.id.desc())
        .subquery()
    )
    stmt = (
        select(latest.c.post_id, func.sum(latest.c.views))
        .where(latest.c.views.is_not(None))
        .group_by(latest.c.post_id)
    )
    return {post_id: int(total) for post_id, total in (await session.execute(stmt)).all()}
