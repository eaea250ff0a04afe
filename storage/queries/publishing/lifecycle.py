"""A post's lifecycle as a person drives it: create, schedule, cancel, retry, resolve.

Every change to a publication's place in the queue bumps its `generation` and returns the jobs
the caller must enqueue or remove (`JobChange`) after its commit; the queue follows Postgres,
never the other way. Nothing here commits: the caller opens the transaction
(`async with session.begin():`) around one call.

Versions: every change here bumps `post.version` (a retry or resolve of one of its publications
too: the post is no longer what the person saw). A reschedule or cancel may say which version it
was made against (`version=`, what the console showed): the post's row is locked (FOR UPDATE, so
two racing edits queue) and the edit is refused with `PostChanged` when the post has moved on,
naming who changed it, when, and what it is now. The engine's status updates do not bump it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import permissions
from storage.models import (
    Connection,
    Post,
    PostStatus,
    Publication,
    PublicationStatus,
)
from storage.permissions import Actor, actor_name
from storage.queries import audit, audit_log
from storage.queries.publishing.inputs import (
    PAST_TOLERANCE,
    PostInput,
    PublishingError,
    check_body,
    zone,
)


@dataclass(frozen=True, slots=True)
class JobRef:
    publication_id: int
    generation: int
    due_at: datetime
    connection_id: int | None = None  # lets the queue batch one account's publications together


@dataclass
class JobChange:
    """What the queue must do after a commit: enqueue these, remove those."""

    enqueue: list[JobRef] = field(default_factory=list)
    remove: list[tuple[int, int]] = field(default_factory=list)  # (publication id, generation)


async def create_post(
    session: AsyncSession, data: PostInput, actor: Actor, now: datetime | None = None
) -> tuple[Post, JobChange]:
    """A post and one publication per chosen account; scheduled when `scheduled_at` is given."""
    await permissions.require_connections(session, actor, data.connection_ids, "compose posts")
    connections = list(
        await session.scalars(select(Connection).where(Connection.id.in_(data.connection_ids)))
    )
    missing = set(data.connection_ids) - {c.id for c in connections}
    if missing:
        raise PublishingError(f"no such connection(s): {sorted(missing)}")
    check_body(data.body, connections, data.media)
    post = Post(
        body=data.body, media=data.media, timezone=data.timezone, created_by=actor_name(actor)
    )
    session.add(post)
    await session.flush()
    await session.execute(
        insert(Publication).values(
            [
                {
                    "post_id": post.id,
                    "connection_id": conn.id,
                    "idempotency_key": uuid.uuid4().hex,
                    "status": PublicationStatus.DRAFT.value,
                }
                for conn in connections
            ]
        )
    )
    audit.record(
        session,
        actor=actor,
        action="post.create",
        entity="post",
        entity_id=str(post.id),
        before=None,
        after={"connections": sorted(c.id for c in connections), "chars": len(data.body)},
    )
    change = JobChange()
    if data.scheduled_at is not None:
        change = await _schedule(session, post, data.scheduled_at, data.timezone, actor, now)
    return post, change


class PostChanged(PublishingError):
    """The post changed since the version the edit was made against: who, when, and what it is
    now, so the person can look again before deciding."""

    title = "changed by someone else"


def describe_post(post: Post) -> str:
    """What a post is now, in one line: its status and, if scheduled, when (its own timezone)."""
    if post.scheduled_at is None or post.status == PostStatus.CANCELLED:
        return str(post.status)
    local = post.scheduled_at.astimezone(zone(post.timezone))
    return f"{post.status} for {local:%a %m-%d %H:%M} {post.timezone}"


async def _refuse_if_moved(session: AsyncSession, post: Post, version: int | None) -> None:
    if version is None or post.version == version:
        return
    pub_ids = await session.scalars(select(Publication.id).where(Publication.post_id == post.id))
    last = await audit_log.latest_change_among(
        session, [("post", str(post.id))] + [("publication", str(p)) for p in pub_ids]
    )
    who = f" by {last.actor} at {last.at:%H:%M} UTC" if last is not None else ""
    raise PostChanged(
        f"post {post.id} changed{who} (version {version} → {post.version}): "
        f"now {describe_post(post)}"
    )


async def _locked_post(session: AsyncSession, post_id: int, version: int | None = None) -> Post:
    post = await session.scalar(
        select(Post)
        .where(Post.id == post_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if post is None:
        raise PublishingError(f"no post {post_id}")
    await _refuse_if_moved(session, post, version)
    return post


async def _bump(session: AsyncSession, post_id: int) -> None:
    """One more change by a person (a publication's retry or resolve: the post moved too)."""
    await session.execute(update(Post).where(Post.id == post_id).values(version=Post.version + 1))


async def schedule_post(
    session: AsyncSession,
    post_id: int,
    when: datetime,
    timezone: str,
    actor: Actor,
    now: datetime | None = None,
    version: int | None = None,
) -> JobChange:
    """Schedule or reschedule: every publication not yet out moves to `when`. `version`: the
    post's version the change was made against (PostChanged when it moved on; None: no check)."""
    await permissions.require_post(session, actor, post_id, "schedule posts")
    post = await _locked_post(session, post_id, version)
    change = await _schedule(session, post, when, timezone, actor, now)
    return change


async def _schedule(
    session: AsyncSession,
    post: Post,
    when: datetime,
    timezone: str,
    actor: Actor,
    now: datetime | None,
) -> JobChange:
    if when.tzinfo is None:
        raise PublishingError("the schedule time needs a timezone")
    zone(timezone)
    now = now or datetime.now(UTC)
    if when < now - PAST_TOLERANCE:
        raise PublishingError(f"{when.isoformat()} is in the past")
    if post.status == PostStatus.CANCELLED:
        raise PublishingError("the post was cancelled; duplicate it to publish it again")
    movable = (PublicationStatus.DRAFT.value, PublicationStatus.SCHEDULED.value)
    rows = (
        await session.execute(
            update(Publication)
            .where(Publication.post_id == post.id, Publication.status.in_(movable))
            .values(
                status=PublicationStatus.SCHEDULED.value,
                generation=Publication.generation + 1,
                due_at=when,
                attempts=0,
                last_error=None,
            )
            .returning(Publication.id, Publication.generation, Publication.connection_id)
        )
    ).all()
    if not rows:
        raise PublishingError("nothing left to schedule: every account is publishing or done")
    before = {  # the same keys as `after`: the audit screen diffs them key by key
        "scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None,
        "timezone": post.timezone if post.scheduled_at else None,
    }
    post.scheduled_at = when
    post.timezone = timezone
    post.version += 1
    audit.record(
        session,
        actor=actor,
        action="post.schedule",
        entity="post",
        entity_id=str(post.id),
        before=before,
        after={"scheduled_at": when.isoformat(), "timezone": timezone},
    )
    await refresh_post_status(session, post.id)
    return JobChange(
        enqueue=[JobRef(pid, gen, when, cid) for pid, gen, cid in rows],
        remove=[(pid, gen - 1) for pid, gen, _ in rows],
    )


async def cancel_post(
    session: AsyncSession, post_id: int, actor: Actor, version: int | None = None
) -> JobChange:
    """Cancel what has not started; a publication already publishing finishes on its own.
    `version` as for schedule_post."""
    await permissions.require_post(session, actor, post_id, "cancel posts")
    post = await _locked_post(session, post_id, version)
    rows = (
        await session.execute(
            update(Publication)
            .where(
                Publication.post_id == post.id,
                Publication.status.in_(
                    (PublicationStatus.DRAFT.value, PublicationStatus.SCHEDULED.value)
                ),
            )
            .values(status=PublicationStatus.CANCELLED.value, generation=Publication.generation + 1)
            .returning(Publication.id, Publication.generation)
        )
    ).all()
    if not rows:
        raise PublishingError("nothing to cancel: every account is publishing or done")
    post.version += 1
    audit.record(
        session,
        actor=actor,
        action="post.cancel",
        entity="post",
        entity_id=str(post.id),
        before={"status": post.status},
        after={"cancelled_publications": [pid for pid, _ in rows]},
    )
    await refresh_post_status(session, post.id)
    return JobChange(remove=[(pid, gen - 1) for pid, gen in rows])


async def retry_publication(
    session: AsyncSession, publication_id: int, actor: Actor, now: datetime | None = None
) -> JobChange:
    """Send a failed publication again, now."""
    await permissions.require_publication(session, actor, publication_id, "retry publications")
    now = now or datetime.now(UTC)
    row = (
        await session.execute(
            update(Publication)
            .where(
                Publication.id == publication_id,
                Publication.status == PublicationStatus.FAILED.value,
            )
            .values(
                status=PublicationStatus.SCHEDULED.value,
                generation=Publication.generation + 1,
                due_at=now,
                attempts=0,
            )
            .returning(Publication.post_id, Publication.generation)
        )
    ).first()
    if row is None:
        raise PublishingError("only a failed publication can be retried")
    await _bump(session, row.post_id)
    audit.record(
        session,
        actor=actor,
        action="publication.retry",
        entity="publication",
        entity_id=str(publication_id),
        before={"status": "failed"},
        after={"status": "scheduled"},
    )
    await refresh_post_status(session, row.post_id)
    return JobChange(enqueue=[JobRef(publication_id, row.generation, now)])


async def resolve_unknown(
    session: AsyncSession,
    publication_id: int,
    *,
    published: bool,
    actor: Actor,
    external_url: str | None = None,
    now: datetime | None = None,
) -> JobChange:
    """A person checked the platform: it is there (published), or it is not (send it again)."""
    await permissions.require_publication(session, actor, publication_id, "resolve publications")
    now = now or datetime.now(UTC)
    values: dict[str, Any]
    if published:
        values = {"status": PublicationStatus.PUBLISHED.value, "published_at": now}
        if external_url:
            values["external_url"] = external_url
    else:
        values = {
            "status": PublicationStatus.SCHEDULED.value,
            "due_at": now,
            "attempts": 0,
            "verify_first": False,
        }
    row = (
        await session.execute(
            update(Publication)
            .where(
                Publication.id == publication_id,
                Publication.status == PublicationStatus.UNKNOWN.value,
            )
            .values(generation=Publication.generation + 1, outcome_unknown=False, **values)
            .returning(Publication.post_id, Publication.generation)
        )
    ).first()
    if row is None:
        raise PublishingError("only a publication with an unknown outcome can be resolved")
    await _bump(session, row.post_id)
    audit.record(
        session,
        actor=actor,
        action="publication.resolve",
        entity="publication",
        entity_id=str(publication_id),
        before={"status": "unknown"},
        after={"published": published, "external_url": external_url},
    )
    await refresh_post_status(session, row.post_id)
    if published:
        return JobChange()
    return JobChange(enqueue=[JobRef(publication_id, row.generation, now)])


async def refresh_post_status(session: AsyncSession, post_id: int) -> str:
    """Derive the post's status from its publications, under the post's row lock.

    The lock serialises concurrent finishers of the same post, so the last one to commit sees
    every other's result (READ COMMITTED re-reads per statement).
    """
    await session.execute(select(Post.id).where(Post.id == post_id).with_for_update())
    statuses = list(
        await session.scalars(select(Publication.status).where(Publication.post_id == post_id))
    )
    status = derive_post_status(statuses)
    await session.execute(
        update(Post).where(Post.id == post_id, Post.status != status).values(status=status)
    )
    return status


def derive_post_status(statuses: Iterable[str]) -> str:
    s = set(statuses)
    active = s - {PublicationStatus.CANCELLED.value}
    if not s:
        return PostStatus.DRAFT.value
    if not active:
        return PostStatus.CANCELLED.value
    if active & {PublicationStatus.PUBLISHING.value, PublicationStatus.UNKNOWN.value}:
        return PostStatus.PUBLISHING.value
    if PublicationStatus.SCHEDULED.value in active:
        done = active & {PublicationStatus.PUBLISHED.value, PublicationStatus.FAILED.value}
        return PostStatus.PUBLISHING.value if done else PostStatus.SCHEDULED.value
    if active == {PublicationStatus.DRAFT.value}:
        return PostStatus.DRAFT.value
    if active == {PublicationStatus.PUBLISHED.value}:
        return PostStatus.PUBLISHED.value
    if PublicationStatus.PUBLISHED.value in active:
        return PostStatus.PARTIAL.value
    return PostStatus.FAILED.value
