"""How an attempt ends: published, failed, unknown, retry later, or released unsent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql.elements import ClauseElement

from storage.models import (
    AttemptOutcome,
    Post,
    PostStatus,
    Publication,
    PublicationAttempt,
    PublicationStatus,
)
from storage.queries.publishing.claims import Work
from storage.queries.publishing.lifecycle import derive_post_status, refresh_post_status


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
    async with AsyncSession(bind=engine) as session, session.begin():
        await refresh_post_status(session, post_id)


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


# --- a batch's outcomes, in one statement each ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    """One send of a batch that the platform confirmed (or a lookup found)."""

    work: Work
    attempt_id: int
    external_id: str
    external_url: str | None
    found: bool = False


_PUBLISHED_MANY = text(
    """
WITH v AS (
  SELECT unnest(CAST(:ids AS bigint[])) AS id, unnest(CAST(:gens AS int[])) AS gen,
         unnest(CAST(:aids AS bigint[])) AS aid, unnest(CAST(:ext AS text[])) AS ext,
         unnest(CAST(:urls AS text[])) AS url, unnest(CAST(:found AS boolean[])) AS found
), u AS (
  UPDATE publication p
     SET status = :published, external_id = v.ext, external_url = v.url, published_at = now(),
         verify_first = false, outcome_unknown = false, last_error = NULL, updated_at = now()
    FROM v
   WHERE p.id = v.id AND p.generation = v.gen AND p.status = :publishing
  RETURNING p.id, p.post_id
), a AS (
  UPDATE publication_attempt t
     SET outcome = CASE WHEN v.found THEN :found_outcome ELSE :published END,
         finished_at = now()
    FROM v
   WHERE t.id = v.aid
), s AS (
  UPDATE post SET status = :published, updated_at = now()
   WHERE id IN (SELECT u.post_id FROM u WHERE u.id = ANY(CAST(:single AS bigint[])))
     AND status <> :published
)
SELECT id, post_id FROM u
"""
)


async def mark_published_many(conn: AsyncConnection, done: Sequence[Done]) -> set[int]:
    """`mark_published` for a batch in one statement (posts with several publications then
    recompute their status under the post's lock). Returns the publications moved (the others
    went stale meanwhile)."""
    if not done:
        return set()
    params = {
        "ids": [d.work.publication.id for d in done],
        "gens": [d.work.publication.generation for d in done],
        "aids": [d.attempt_id for d in done],
        "ext": [d.external_id for d in done],
        "urls": [d.external_url for d in done],
        "found": [d.found for d in done],
        "single": [d.work.publication.id for d in done if d.work.single],
        "published": PublicationStatus.PUBLISHED.value,
        "publishing": PublicationStatus.PUBLISHING.value,
        "found_outcome": AttemptOutcome.FOUND.value,
    }
    rows = (await conn.execute(_PUBLISHED_MANY, params)).all()
    moved = {int(pub_id) for pub_id, _ in rows}
    shared_posts = {
        d.work.post.id for d in done if not d.work.single and d.work.publication.id in moved
    }
    for post_id in sorted(shared_posts):
        await _refresh_locked(conn.engine, post_id)
    return moved


_RELEASE_MANY = text(
    """
WITH v AS (
  SELECT unnest(CAST(:ids AS bigint[])) AS id, unnest(CAST(:gens AS int[])) AS gen,
         unnest(CAST(:aids AS bigint[])) AS aid
), u AS (
  UPDATE publication p
     SET status = :scheduled, generation = p.generation + 1, due_at = :due_at,
         last_error = :reason, attempts = p.attempts - 1, updated_at = now()
    FROM v
   WHERE p.id = v.id AND p.generation = v.gen AND p.status = :publishing
  RETURNING p.id, p.post_id, p.generation
), d AS (
  DELETE FROM publication_attempt t USING v WHERE t.id = v.aid
), s AS (
  UPDATE post SET status = :post_scheduled, updated_at = now()
   WHERE id IN (SELECT u.post_id FROM u WHERE u.id = ANY(CAST(:single AS bigint[])))
)
SELECT id, post_id, generation FROM u
"""
)


async def release_many(
    conn: AsyncConnection,
    claims: Sequence[tuple[Work, int]],
    due_at: datetime,
    reason: str,
) -> dict[int, int]:
    """`release` for many (work, attempt id) in one statement: nothing was sent. Returns the new
    generation of each publication released (a stale one is absent)."""
    if not claims:
        return {}
    params = {
        "ids": [w.publication.id for w, _ in claims],
        "gens": [w.publication.generation for w, _ in claims],
        "aids": [aid for _, aid in claims],
        "single": [w.publication.id for w, _ in claims if w.single],
        "scheduled": PublicationStatus.SCHEDULED.value,
        "publishing": PublicationStatus.PUBLISHING.value,
        "post_scheduled": PostStatus.SCHEDULED.value,
        "due_at": due_at,
        "reason": reason,
    }
    rows = (await conn.execute(_RELEASE_MANY, params)).all()
    released = {int(pub_id): int(gen) for pub_id, _, gen in rows}
    shared_posts = {w.post.id for w, _ in claims if not w.single and w.publication.id in released}
    for post_id in sorted(shared_posts):
        await _refresh_locked(conn.engine, post_id)
    return released
