"""Posts, connections and publications: validated input, the lifecycle's state changes, reads.

Every change to a publication's place in the queue bumps its `generation` and returns the jobs
the caller must enqueue or remove (`JobChange`); the queue follows Postgres, never the other way.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import (
    Integer,
    Select,
    String,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ClauseElement

from storage.crypto import TokenCipher
from storage.models import (
    AttemptOutcome,
    Connection,
    ConnectionStatus,
    Platform,
    Post,
    PostStatus,
    Publication,
    PublicationAttempt,
    PublicationStatus,
)
from storage.queries import audit
from storage.user_error import UserError

# Per-platform text limits, checked where the post is typed.
BODY_LIMITS = {
    Platform.MOCK: 5000,
    Platform.X: 280,
    Platform.FACEBOOK: 63_206,
    Platform.INSTAGRAM: 2200,
    Platform.YOUTUBE: 5000,
}
# How far in the past a schedule may be typed (clock skew, slow typing) before it is refused.
PAST_TOLERANCE = timedelta(minutes=1)


class PublishingError(ValueError, UserError):
    """A request that cannot be honoured, with a message for the person who made it."""

    title = "post refused"


# --- validated input -----------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a directory
        raise ValueError(f"unknown timezone {name!r}: use an IANA name like Europe/Paris") from exc


def parse_local_time(text: str, timezone: str) -> datetime:
    """'2026-11-24 09:30' (or ISO 8601 with an offset) in `timezone` -> an aware UTC instant."""
    tz = zone(timezone)
    raw = text.strip().replace("T", " ")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"cannot read {text!r} as a time: write YYYY-MM-DD HH:MM") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
        # A wall time skipped by a DST change does not round-trip: refuse it rather than guess.
        back = parsed.astimezone(UTC).astimezone(tz)
        if back.replace(tzinfo=None) != parsed.replace(tzinfo=None):
            raise ValueError(f"{text!r} does not exist in {timezone} (clock change)")
    return parsed.astimezone(UTC)


class ConnectionInput(BaseModel):
    platform: Platform
    account_id: str = Field(min_length=1, max_length=200)
    display_name: str = Field(min_length=1, max_length=200)
    token: str = Field(min_length=1, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a timezone (e.g. 2026-12-01T00:00:00Z)")
        return value


class PostInput(BaseModel):
    body: str = Field(min_length=1)
    media: list[str] = Field(default_factory=list, max_length=10)
    connection_ids: list[int] = Field(min_length=1)
    timezone: str = "UTC"
    scheduled_at: datetime | None = None  # aware; None keeps the post a draft

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the post is empty")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _when(self) -> PostInput:
        if self.scheduled_at is not None and self.scheduled_at.tzinfo is None:
            raise ValueError("scheduled_at needs a timezone")
        return self


# --- connections ---------------------------------------------------------------------------


async def save_connection(
    session: AsyncSession, cipher: TokenCipher, data: ConnectionInput, actor: str
) -> Connection:
    """Add an account, or replace its tokens (a re-authorisation clears needs-reauth)."""
    values = {
        "platform": data.platform.value,
        "account_id": data.account_id,
        "display_name": data.display_name,
        "token_encrypted": cipher.encrypt(data.token),
        "refresh_token_encrypted": (
            cipher.encrypt(data.refresh_token) if data.refresh_token else None
        ),
        "expires_at": data.expires_at,
        "status": ConnectionStatus.OK.value,
        "status_reason": None,
    }
    stmt = insert(Connection).values(**values)
    upsert = stmt.on_conflict_do_update(
        constraint="uq_connection_account",
        set_={**{k: stmt.excluded[k] for k in values if k != "platform"}, "updated_at": func.now()},
    ).returning(Connection)
    conn: Connection = (await session.scalars(upsert)).one()
    audit.record(
        session,
        actor=actor,
        action="connection.save",
        entity="connection",
        entity_id=str(conn.id),
        before=None,
        after={"platform": conn.platform, "account_id": conn.account_id, "status": conn.status},
    )
    await session.commit()
    return conn


async def list_connections(session: AsyncSession) -> list[Connection]:
    return list(
        await session.scalars(select(Connection).order_by(Connection.platform, Connection.id))
    )


async def get_connection(session: AsyncSession, connection_id: int) -> Connection | None:
    return await session.get(Connection, connection_id)


async def mark_needs_reauth(session: AsyncSession, connection_id: int, reason: str) -> None:
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(status=ConnectionStatus.NEEDS_REAUTH.value, status_reason=reason)
    )
    await session.commit()


# --- posts: create, schedule, cancel --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRef:
    publication_id: int
    generation: int
    due_at: datetime


@dataclass
class JobChange:
    """What the queue must do after a commit: enqueue these, remove those."""

    enqueue: list[JobRef] = field(default_factory=list)
    remove: list[tuple[int, int]] = field(default_factory=list)  # (publication id, generation)


def _check_body(body: str, connections: Sequence[Connection]) -> None:
    for conn in connections:
        limit = BODY_LIMITS.get(Platform(conn.platform), 5000)
        if len(body) > limit:
            raise PublishingError(
                f"the post has {len(body)} characters; {conn.platform} ({conn.display_name}) "
                f"takes at most {limit}"
            )


async def create_post(
    session: AsyncSession, data: PostInput, actor: str, now: datetime | None = None
) -> tuple[Post, JobChange]:
    """A post and one publication per chosen account; scheduled when `scheduled_at` is given."""
    connections = list(
        await session.scalars(select(Connection).where(Connection.id.in_(data.connection_ids)))
    )
    missing = set(data.connection_ids) - {c.id for c in connections}
    if missing:
        raise PublishingError(f"no such connection(s): {sorted(missing)}")
    _check_body(data.body, connections)
    post = Post(body=data.body, media=data.media, timezone=data.timezone, created_by=actor)
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
    await session.commit()
    return post, change


async def _locked_post(session: AsyncSession, post_id: int) -> Post:
    post = await session.scalar(select(Post).where(Post.id == post_id).with_for_update())
    if post is None:
        raise PublishingError(f"no post {post_id}")
    return post


async def schedule_post(
    session: AsyncSession,
    post_id: int,
    when: datetime,
    timezone: str,
    actor: str,
    now: datetime | None = None,
) -> JobChange:
    """Schedule or reschedule: every publication not yet out moves to `when`."""
    post = await _locked_post(session, post_id)
    change = await _schedule(session, post, when, timezone, actor, now)
    await session.commit()
    return change


async def _schedule(
    session: AsyncSession,
    post: Post,
    when: datetime,
    timezone: str,
    actor: str,
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
            .returning(Publication.id, Publication.generation)
        )
    ).all()
    if not rows:
        raise PublishingError("nothing left to schedule: every account is publishing or done")
    before = {"scheduled_at": post.scheduled_at.isoformat() if post.scheduled_at else None}
    post.scheduled_at = when
    post.timezone = timezone
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
        enqueue=[JobRef(pid, gen, when) for pid, gen in rows],
        remove=[(pid, gen - 1) for pid, gen in rows],
    )


async def cancel_post(session: AsyncSession, post_id: int, actor: str) -> JobChange:
    """Cancel what has not started; a publication already publishing finishes on its own."""
    post = await _locked_post(session, post_id)
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
    await session.commit()
    return JobChange(remove=[(pid, gen - 1) for pid, gen in rows])


async def retry_publication(
    session: AsyncSession, publication_id: int, actor: str, now: datetime | None = None
) -> JobChange:
    """Send a failed publication again, now."""
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
    await session.commit()
    return JobChange(enqueue=[JobRef(publication_id, row.generation, now)])


async def resolve_unknown(
    session: AsyncSession,
    publication_id: int,
    *,
    published: bool,
    actor: str,
    external_url: str | None = None,
    now: datetime | None = None,
) -> JobChange:
    """A person checked the platform: it is there (published), or it is not (send it again)."""
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
    await session.commit()
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


# --- the job's side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Work:
    """A publication as a job sees it, with its post and account.

    `publication.attempts` counts the attempts before the current one; `single` says the post
    has no other publication (its status then follows this one's without a lock).
    """

    publication: Publication
    post: Post
    connection: Connection
    single: bool = False


def _siblings(post_id: Any) -> Any:
    other = aliased(Publication)
    return select(func.count()).select_from(other).where(other.post_id == post_id).scalar_subquery()


async def load_work(session: AsyncSession, publication_id: int) -> Work | None:
    row = (
        await session.execute(
            select(Publication, Post, Connection, _siblings(Publication.post_id))
            .join(Post, Post.id == Publication.post_id)
            .join(Connection, Connection.id == Publication.connection_id)
            .where(Publication.id == publication_id)
        )
    ).first()
    return Work(row[0], row[1], row[2], row[3] == 1) if row else None


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection on which each statement commits by itself: one round trip per call.

    The job's state changes are single statements (CTEs), so they need no BEGIN/COMMIT.
    """
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True, slots=True)
class Claimed:
    work: Work
    attempt_id: int


@cache
def _claim_statement() -> tuple[Select[Any], Any]:
    """Built once (statement construction costs more than its execution): parameters
    `claim_id`, `claim_generation`, `claim_worker`.

    Locks the post before the publication, the order every writer of both keeps (schedule,
    cancel): the UPDATE's condition needs `lp`, so the post's lock is taken first."""
    lp = (
        select(Post.id)
        .where(
            Post.id
            == select(Publication.post_id)
            .where(Publication.id == bindparam("claim_id"))
            .scalar_subquery()
        )
        .with_for_update()
        .cte("lp")
    )
    c = (
        update(Publication)
        .where(
            Publication.id == bindparam("claim_id"),
            Publication.generation == bindparam("claim_generation"),
            Publication.status == PublicationStatus.SCHEDULED.value,
            Publication.post_id.in_(select(lp.c.id)),
        )
        .values(
            status=PublicationStatus.PUBLISHING.value,
            attempts=Publication.attempts + 1,
            started_at=func.now(),
            worker=bindparam("claim_worker"),
        )
        .returning(*Publication.__table__.c)
        .cte("c")
    )
    lateness = func.round(func.extract("epoch", c.c.started_at - c.c.due_at) * 1000)
    a = (
        insert(PublicationAttempt)
        .from_select(
            ["publication_id", "generation", "worker", "lateness_ms"],
            select(
                c.c.id,
                c.c.generation,
                bindparam("claim_worker", type_=String),
                lateness.cast(Integer),
            ),
        )
        .returning(PublicationAttempt.id)
        .cte("a")
    )
    # A claimed publication makes its post "publishing" whatever the others do: a one-way step
    # needs no lock; finishing recomputes the post's status under its lock.
    p = (
        update(Post)
        .where(
            Post.id == c.c.post_id,
            Post.status.in_((PostStatus.SCHEDULED.value, PostStatus.DRAFT.value)),
        )
        .values(status=PostStatus.PUBLISHING.value)
        .cte("p")
    )
    stmt = (
        select(c, a.c.id.label("attempt_id"), Post, Connection, _siblings(c.c.post_id))
        .select_from(c)
        .join(a, true())
        .join(Post, Post.id == c.c.post_id)
        .join(Connection, Connection.id == c.c.connection_id)
        .add_cte(p)
    )
    return stmt, c


async def claim(
    conn: AsyncConnection, publication_id: int, generation: int, worker: str
) -> Claimed | None:
    """SCHEDULED -> PUBLISHING for exactly one caller, in one statement (committed before the
    request leaves): opens the attempt, marks the post publishing, returns what the job needs."""
    stmt, c = _claim_statement()
    params = {"claim_id": publication_id, "claim_generation": generation, "claim_worker": worker}
    row = (await conn.execute(stmt, params)).first()
    if row is None:
        return None
    values = row._mapping
    pub = Publication(**{col.name: values[c.c[col.name]] for col in Publication.__table__.c})
    pub.attempts -= 1
    post = Post(**{col.name: values[Post.__table__.c[col.name]] for col in Post.__table__.c})
    account = Connection(
        **{col.name: values[Connection.__table__.c[col.name]] for col in Connection.__table__.c}
    )
    return Claimed(Work(pub, post, account, row[-1] == 1), int(values["attempt_id"]))


async def take_over(
    session: AsyncSession, publication_id: int, generation: int, worker: str, stale_before: datetime
) -> int | None:
    """Re-claim a publication whose worker died mid-attempt (status still PUBLISHING).

    Only when its attempt started before `stale_before`; the interrupted attempt is closed and
    the publication is flagged verify-first: the request may have reached the platform.
    """
    row = (
        await session.execute(
            update(Publication)
            .where(
                Publication.id == publication_id,
                Publication.generation == generation,
                Publication.status == PublicationStatus.PUBLISHING.value,
                Publication.started_at < stale_before,
            )
            .values(
                attempts=Publication.attempts + 1,
                started_at=func.now(),
                worker=worker,
                verify_first=True,
            )
            .returning(Publication.id)
        )
    ).first()
    if row is None:
        await session.rollback()
        return None
    await session.execute(
        update(PublicationAttempt)
        .where(
            PublicationAttempt.publication_id == publication_id,
            PublicationAttempt.outcome == AttemptOutcome.RUNNING.value,
        )
        .values(
            outcome=AttemptOutcome.INTERRUPTED.value,
            finished_at=func.now(),
            error="the worker stopped during this attempt",
        )
    )
    attempt_id = await session.scalar(
        insert(PublicationAttempt)
        .values(publication_id=publication_id, generation=generation, worker=worker)
        .returning(PublicationAttempt.id)
    )
    await session.commit()
    return attempt_id


async def save_checkpoint(
    conn: AsyncConnection, publication_id: int, generation: int, checkpoint: dict[str, Any]
) -> None:
    await conn.execute(
        update(Publication)
        .where(Publication.id == publication_id, Publication.generation == generation)
        .values(checkpoint=checkpoint)
    )


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: AttemptOutcome
    error: str | None = None
    http_status: int | None = None


async def _finish(
    conn: AsyncConnection,
    work: Work,
    attempt_id: int | None,
    result: AttemptResult,
    values: dict[str, Any],
    from_status: str = PublicationStatus.PUBLISHING.value,
) -> int | None:
    """Move a publication on from `from_status` (same generation only) in one statement that
    also closes the attempt; the post follows (in the same statement when it is the post's only
    publication, else under the post's lock). Returns the generation, None when stale."""
    pub = work.publication
    params: dict[str, Any] = {"f_id": pub.id, "f_generation": pub.generation}
    shape: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, ClauseElement):
            shape.append((name, str(value)))
        else:
            shape.append((name, ""))
            params[f"v_{name}"] = value
    if attempt_id is not None:
        params.update(
            a_id=attempt_id,
            a_outcome=result.outcome.value,
            a_error=result.error,
            a_http=result.http_status,
        )
    post_status = None
    if work.single and "status" in values:
        post_status = derive_post_status([values["status"]])
        params["p_status"] = post_status
    key = (tuple(shape), from_status, attempt_id is not None, post_status is not None)
    stmt = _finish_statement(key, {name: values[name] for name, expr in shape if expr})
    row = (await conn.execute(stmt, params)).first()
    if row is None:
        return None
    if not work.single:
        await _refresh_locked(conn.engine, pub.post_id)
    return int(row.generation)


_FINISH_CACHE: dict[tuple[Any, ...], Select[Any]] = {}


def _finish_statement(key: tuple[Any, ...], expressions: dict[str, Any]) -> Select[Any]:
    """The finishing statement of one shape, built once: UPDATE publication (+ close the
    attempt, + the post's status when it is the only publication) as CTEs of one SELECT."""
    cached = _FINISH_CACHE.get(key)
    if cached is not None:
        return cached
    shape, from_status, with_attempt, with_post = key
    sets = {name: expressions[name] if expr else bindparam(f"v_{name}") for name, expr in shape}
    u = (
        update(Publication)
        .where(
            Publication.id == bindparam("f_id"),
            Publication.generation == bindparam("f_generation"),
            Publication.status == from_status,
        )
        .values(**sets)
        .returning(Publication.post_id, Publication.generation)
        .cte("u")
    )
    stmt = select(u.c.post_id, u.c.generation)
    if with_attempt:
        stmt = stmt.add_cte(
            update(PublicationAttempt)
            .where(PublicationAttempt.id == bindparam("a_id"))
            .values(
                outcome=bindparam("a_outcome"),
                error=bindparam("a_error"),
                http_status=bindparam("a_http", type_=Integer),
                finished_at=func.now(),
            )
            .cte("a")
        )
    if with_post:
        stmt = stmt.add_cte(
            update(Post).where(Post.id == u.c.post_id).values(status=bindparam("p_status")).cte("p")
        )
    _FINISH_CACHE[key] = stmt
    return stmt


async def _refresh_locked(engine: AsyncEngine, post_id: int) -> None:
    # A transaction of its own (not the autocommit connection): the post's lock must be held.
    async with AsyncSession(bind=engine) as session:
        await refresh_post_status(session, post_id)
        await session.commit()


async def mark_published(
    conn: AsyncConnection,
    work: Work,
    attempt_id: int,
    *,
    external_id: str,
    external_url: str | None,
    found: bool = False,
) -> bool:
    result = AttemptResult(AttemptOutcome.FOUND if found else AttemptOutcome.PUBLISHED)
    values = {
        "status": PublicationStatus.PUBLISHED.value,
        "external_id": external_id,
        "external_url": external_url,
        "published_at": func.now(),
        "verify_first": False,
        "outcome_unknown": False,
        "last_error": None,
    }
    return await _finish(conn, work, attempt_id, result, values) is not None


async def mark_failed(
    conn: AsyncConnection, work: Work, attempt_id: int, result: AttemptResult
) -> bool:
    values = {"status": PublicationStatus.FAILED.value, "last_error": result.error}
    return await _finish(conn, work, attempt_id, result, values) is not None


async def mark_unknown(
    conn: AsyncConnection, work: Work, attempt_id: int, result: AttemptResult
) -> bool:
    """The request may have gone out and the platform offers no lookup: a person decides."""
    values = {
        "status": PublicationStatus.UNKNOWN.value,
        "outcome_unknown": True,
        "last_error": result.error,
    }
    return await _finish(conn, work, attempt_id, result, values) is not None


async def retry_later(
    conn: AsyncConnection,
    work: Work,
    attempt_id: int | None,
    result: AttemptResult,
    due_at: datetime,
    *,
    verify_first: bool = False,
    from_status: str = PublicationStatus.PUBLISHING.value,
) -> int | None:
    """Back to SCHEDULED at `due_at` under a new generation; returns it (None: stale)."""
    values: dict[str, Any] = {
        "status": PublicationStatus.SCHEDULED.value,
        "generation": Publication.generation + 1,
        "due_at": due_at,
        "last_error": result.error,
        "outcome_unknown": False,
    }
    if from_status == PublicationStatus.PUBLISHING.value:
        # After an attempt: verify first next time if this one may have reached the platform.
        values["verify_first"] = verify_first
    return await _finish(conn, work, attempt_id, result, values, from_status)


async def release(
    conn: AsyncConnection, work: Work, attempt_id: int, due_at: datetime, reason: str
) -> int | None:
    """Undo a claim that a gate refused before anything was sent (breaker open, limit reached):
    back to SCHEDULED at `due_at`, the attempt forgotten, no try counted."""
    values: dict[str, Any] = {
        "status": PublicationStatus.SCHEDULED.value,
        "generation": Publication.generation + 1,
        "due_at": due_at,
        "last_error": reason,
        "attempts": Publication.attempts - 1,
    }
    pub = work.publication
    u = (
        update(Publication)
        .where(
            Publication.id == pub.id,
            Publication.generation == pub.generation,
            Publication.status == PublicationStatus.PUBLISHING.value,
        )
        .values(**values)
        .returning(Publication.post_id, Publication.generation)
        .cte("u")
    )
    stmt = select(u.c.post_id, u.c.generation).add_cte(
        delete(PublicationAttempt).where(PublicationAttempt.id == attempt_id).cte("d")
    )
    if work.single:
        stmt = stmt.add_cte(
            update(Post)
            .where(Post.id == u.c.post_id)
            .values(status=PostStatus.SCHEDULED.value)
            .cte("p")
        )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    if not work.single:
        await _refresh_locked(conn.engine, pub.post_id)
    return int(row.generation)


# --- reconcile and reads --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    publication_id: int
    generation: int
    status: str
    due_at: datetime | None
    started_at: datetime | None


async def pending_publications(session: AsyncSession) -> list[Pending]:
    """Every publication that owes a queue job: scheduled, or publishing (maybe orphaned)."""
    rows = await session.execute(
        select(
            Publication.id,
            Publication.generation,
            Publication.status,
            Publication.due_at,
            Publication.started_at,
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
