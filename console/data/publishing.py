"""The console's read model and edits for publishing (Posts and Connections screens).

Everything goes through storage.queries.publishing and engine.publish_queue / engine.resilience:
no SQL, no Redis command of its own. Row types are frozen dataclasses so a screen can skip
redrawing when a reload brought nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis

from console.data.acting import acting
from console.data.common import STORE_ERRORS
from engine import publish_queue
from engine.resilience import CircuitBreaker
from storage.database import Database
from storage.models import Platform
from storage.queries import post_metrics, publishing
from storage.queries.publishing import JobChange

# The post form's input type and its checks, for the screens (they import no storage module).
from storage.queries.publishing import PostInput as PostInput
from storage.queries.publishing import parse_local_time as parse_local_time
from storage.queries.publishing import zone as zone
from storage.settings import Settings

STATUS_MARKS = {
    "published": "✓",
    "failed": "✗",
    "unknown": "?",
    "publishing": "…",
    "scheduled": "·",
    "cancelled": "-",
    "draft": " ",
}


@dataclass(frozen=True, slots=True)
class PublicationRow:
    id: int
    connection: str
    platform: str
    status: str
    attempts: int
    due_at: datetime | None
    external_url: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class PostRow:
    id: int
    status: str
    body: str
    media: tuple[str, ...]
    scheduled_at: datetime | None
    timezone: str
    publications: tuple[PublicationRow, ...]
    views: int | None = None  # at the latest metrics read, summed over its publications
    version: int = 1  # what an edit of this post is made against (a stale one is refused)

    @property
    def first_line(self) -> str:
        lines = self.body.strip().splitlines()
        return lines[0] if lines else ""

    def local_time(self) -> str:
        if self.scheduled_at is None:
            return "draft"
        return self.scheduled_at.astimezone(ZoneInfo(self.timezone)).strftime("%a %m-%d %H:%M")

    def targets(self) -> str:
        return " ".join(
            f"{p.connection}{STATUS_MARKS.get(p.status, '')}" for p in self.publications
        )

    def matches(self, needle: str) -> bool:
        text = needle.lower()
        return text in self.body.lower() or text in self.status or text in self.targets().lower()

    def has(self, status: str) -> bool:
        return any(p.status == status for p in self.publications)


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    id: int
    platform: str
    display_name: str
    account_id: str
    status: str
    status_reason: str | None
    expires_at: datetime | None
    breaker: str


@dataclass(frozen=True, slots=True)
class PostsView:
    posts: tuple[PostRow, ...]  # the list view: a window, posts[0] is number `offset`
    connections: tuple[ConnectionRow, ...]
    counts: tuple[tuple[str, int], ...]
    offset: int = 0
    total: int = 0  # posts matching (the list's length); the week view: len(posts)
    search: str | None = None


# The list view reads the posts on and around the screen: a window of this many at the
# scroll position, plus the count of all that match (the week view reads its whole week).
WINDOW_ROWS = 200


def week_start(moment: datetime, timezone: str = "UTC") -> datetime:
    """Monday 00:00 of the week holding `moment`, in `timezone`, as a UTC instant."""
    local = moment.astimezone(ZoneInfo(timezone))
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return monday.astimezone(UTC)


async def load_posts(
    db: Database,
    *,
    connection_id: int | None = None,
    week_of: datetime | None = None,
    timezone: str = "UTC",
    offset: int = 0,
    search: str | None = None,
) -> PostsView:
    """The week of `week_of` (every post of it), or else the list's window of WINDOW_ROWS
    posts from `offset` matching `search`, and how many match in all."""
    start = end = None
    if week_of is not None:
        start = week_start(week_of, timezone)
        end = start + timedelta(days=7)
        search, offset = None, 0  # the week view filters its week in memory
    async with db.session() as session:
        total = None
        if week_of is None:
            total = await publishing.count_posts(
                session, connection_id=connection_id, search=search
            )
            offset = max(0, min(offset, total - WINDOW_ROWS))
        rows = await publishing.list_posts(
            session,
            connection_id=connection_id,
            start=start,
            end=end,
            search=search,
            limit=WINDOW_ROWS if week_of is None else 500,
            offset=offset,
        )
        connections = await publishing.list_connections(session)
        counts = await publishing.status_counts(session)
        views = await post_metrics.latest_views(session, [row.post.id for row in rows])
    posts = tuple(
        PostRow(
            id=row.post.id,
            status=row.post.status,
            body=row.post.body,
            media=tuple(row.post.media),
            scheduled_at=row.post.scheduled_at,
            timezone=row.post.timezone,
            publications=tuple(
                PublicationRow(
                    id=pub.id,
                    connection=conn.display_name,
                    platform=conn.platform,
                    status=pub.status,
                    attempts=pub.attempts,
                    due_at=pub.due_at,
                    external_url=pub.external_url,
                    last_error=pub.last_error,
                )
                for pub, conn in row.publications
            ),
            views=views.get(row.post.id),
            version=row.post.version,
        )
        for row in rows
    )
    conns = tuple(_connection_row(c, "") for c in connections)
    return PostsView(
        posts,
        conns,
        tuple(sorted(counts.items())),
        offset=offset,
        total=len(posts) if total is None else total,
        search=search,
    )


def _connection_row(conn: Any, breaker: str) -> ConnectionRow:
    return ConnectionRow(
        id=conn.id,
        platform=conn.platform,
        display_name=conn.display_name,
        account_id=conn.account_id,
        status=conn.status,
        status_reason=conn.status_reason,
        expires_at=conn.expires_at,
        breaker=breaker,
    )


async def load_connections(
    db: Database, redis: ArqRedis | None, settings: Settings
) -> tuple[ConnectionRow, ...]:
    async with db.session() as session:
        connections = await publishing.list_connections(session)
    states: dict[str, str] = {}
    if redis is not None:
        for platform in {c.platform for c in connections}:
            status = await CircuitBreaker(redis, settings, platform).status()
            states[platform] = status.state.value
    return tuple(_connection_row(c, states.get(c.platform, "?")) for c in connections)


@dataclass(frozen=True, slots=True)
class AttemptLine:
    started_at: datetime
    outcome: str
    http_status: int | None
    error: str | None
    lateness_ms: int | None
    worker: str | None


async def load_attempts(db: Database, publication_id: int) -> tuple[AttemptLine, ...]:
    async with db.session() as session:
        attempts = await publishing.attempts_of(session, publication_id)
    return tuple(
        AttemptLine(a.started_at, a.outcome, a.http_status, a.error, a.lateness_ms, a.worker)
        for a in attempts
    )


# --- edits: Postgres first (validated, audited), then the queue follows -------------------------
# Each takes the console's `now` (CreatordeckApp.now): "in the past" and "due now" mean the same
# thing to the person at the keyboard, to the check, and to the row written.


async def _apply(redis: ArqRedis | None, settings: Settings, change: JobChange) -> str:
    if redis is None:
        return " (queue unreachable: the engine's reconcile will pick it up)"
    try:
        await publish_queue.apply(redis, settings, change)
    except STORE_ERRORS as exc:
        return f" (queue update failed, the engine's reconcile will repair it: {exc})"
    return ""


async def compose_post(
    db: Database,
    redis: ArqRedis | None,
    settings: Settings,
    data: publishing.PostInput,
    now: datetime,
) -> tuple[int, str]:
    async with db.transaction() as session:
        post, change = await publishing.create_post(session, data, await acting(session), now)
    return post.id, await _apply(redis, settings, change)


async def reschedule_post(
    db: Database,
    redis: ArqRedis | None,
    settings: Settings,
    post_id: int,
    when: datetime,
    timezone: str,
    now: datetime,
    version: int | None = None,
) -> str:
    """Schedule or reschedule; `version`: the post's version on screen (PostChanged, a
    UserError naming the other change, when someone changed the post since)."""
    async with db.transaction() as session:
        change = await publishing.schedule_post(
            session, post_id, when, timezone, await acting(session), now, version
        )
    return await _apply(redis, settings, change)


async def cancel_post(
    db: Database,
    redis: ArqRedis | None,
    settings: Settings,
    post_id: int,
    version: int | None = None,
) -> str:
    """Cancel; `version` as for reschedule_post."""
    async with db.transaction() as session:
        change = await publishing.cancel_post(session, post_id, await acting(session), version)
    return await _apply(redis, settings, change)


async def retry_failed(
    db: Database,
    redis: ArqRedis | None,
    settings: Settings,
    publication_ids: list[int],
    now: datetime,
) -> str:
    total = JobChange()
    for pub_id in publication_ids:
        async with db.transaction() as session:
            change = await publishing.retry_publication(session, pub_id, await acting(session), now)
        total.enqueue.extend(change.enqueue)
    return await _apply(redis, settings, total)


async def resolve_unknown(
    db: Database,
    redis: ArqRedis | None,
    settings: Settings,
    publication_id: int,
    published: bool,
    now: datetime,
    external_url: str | None = None,
) -> str:
    async with db.transaction() as session:
        change = await publishing.resolve_unknown(
            session,
            publication_id,
            published=published,
            actor=await acting(session),
            external_url=external_url,
            now=now,
        )
    return await _apply(redis, settings, change)


def body_limit(platforms: list[str]) -> int | None:
    limits = [publishing.BODY_LIMITS.get(Platform(p), 5000) for p in platforms]
    return min(limits) if limits else None
