"""Reads: what the reconcile owes the queue, and the console's lists and counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Connection,
    Post,
    Publication,
    PublicationAttempt,
    PublicationStatus,
)


@dataclass(frozen=True, slots=True)
class Pending:
    publication_id: int
    generation: int
    status: str
    due_at: datetime | None
    started_at: datetime | None
    connection_id: int | None = None


async def pending_publications(session: AsyncSession) -> list[Pending]:
    """Every publication that owes a queue job: scheduled, or publishing (maybe orphaned)."""
    rows = await session.execute(
        select(
            Publication.id,
            Publication.generation,
            Publication.status,
            Publication.due_at,
            Publication.started_at,
            Publication.connection_id,
        ).where(
            Publication.status.in_(
                (PublicationStatus.SCHEDULED.value, PublicationStatus.PUBLISHING.value)
            )
        )
    )
    return [Pending(*row) for row in rows.all()]


async def current_generations(session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
    """Generation of each still-pending publication among `ids`."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Publication.id, Publication.generation).where(
            Publication.id.in_(wanted),
            Publication.status.in_(
                (PublicationStatus.SCHEDULED.value, PublicationStatus.PUBLISHING.value)
            ),
        )
    )
    return {int(pub): int(gen) for pub, gen in rows.all()}


@dataclass(frozen=True, slots=True)
class PostRow:
    post: Post
    publications: list[tuple[Publication, Connection]]


def _posts_where(
    query: Any,
    connection_id: int | None,
    start: datetime | None,
    end: datetime | None,
    status: str | None,
    search: str | None,
) -> Any:
    if connection_id is not None:
        query = query.where(
            Post.id.in_(
                select(Publication.post_id).where(Publication.connection_id == connection_id)
            )
        )
    if start is not None:
        query = query.where(Post.scheduled_at >= start)
    if end is not None:
        query = query.where(Post.scheduled_at < end)
    if status:
        query = query.where(Post.status == status)
    if search:
        # As the console's filter did in memory: the text, the status, or an account's name.
        accounts = (
            select(Publication.post_id)
            .join(Connection, Connection.id == Publication.connection_id)
            .where(Connection.display_name.icontains(search, autoescape=True))
        )
        query = query.where(
            Post.body.icontains(search, autoescape=True)
            | Post.status.icontains(search, autoescape=True)
            | Post.id.in_(accounts)
        )
    return query


async def count_posts(
    session: AsyncSession,
    *,
    connection_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    status: str | None = None,
    search: str | None = None,
) -> int:
    """How many posts `list_posts` would list with these filters (and no limit)."""
    query = _posts_where(select(func.count(Post.id)), connection_id, start, end, status, search)
    return int(await session.scalar(query) or 0)


async def list_posts(
    session: AsyncSession,
    *,
    connection_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    status: str | None = None,
    search: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[PostRow]:
    """Posts (newest schedule first) with their publications; optionally one account or week,
    or those matching `search`: the `limit` of them from `offset` on."""
    query = select(Post).order_by(Post.scheduled_at.desc().nulls_first(), Post.id.desc())
    query = _posts_where(query, connection_id, start, end, status, search).offset(offset)
    posts = list(await session.scalars(query.limit(limit)))
    if not posts:
        return []
    rows = await session.execute(
        select(Publication, Connection)
        .join(Connection, Connection.id == Publication.connection_id)
        .where(Publication.post_id.in_([p.id for p in posts]))
        .order_by(Publication.id)
    )
    by_post: dict[int, list[tuple[Publication, Connection]]] = {}
    for pub, conn in rows.all():
        by_post.setdefault(pub.post_id, []).append((pub, conn))
    return [PostRow(post, by_post.get(post.id, [])) for post in posts]


async def attempts_of(session: AsyncSession, publication_id: int) -> list[PublicationAttempt]:
    rows = await session.scalars(
        select(PublicationAttempt)
        .where(PublicationAttempt.publication_id == publication_id)
        .order_by(PublicationAttempt.id)
    )
    return list(rows)


async def needing_attention(session: AsyncSession) -> list[Publication]:
    """Publications a person must look at: outcome unknown, or failed."""
    rows = await session.scalars(
        select(Publication)
        .where(
            or_(
                Publication.status == PublicationStatus.UNKNOWN.value,
                and_(
                    Publication.status == PublicationStatus.FAILED.value,
                    Publication.updated_at > func.now() - timedelta(days=7),
                ),
            )
        )
        .order_by(Publication.updated_at.desc())
    )
    return list(rows)


async def status_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Publication.status, func.count()).group_by(Publication.status)
    )
    return {status: int(count) for status, count in rows.all()}
