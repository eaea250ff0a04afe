"""The engine's side of a publication: load it, claim it (one, or a batch), take it over.

A claim moves SCHEDULED -> PUBLISHING in one conditional UPDATE (same generation only), opens
the attempt and marks the post publishing, and commits before any request leaves: of two runs
of the same job exactly one gets a row. `claim_batch` does the same for many (publication,
generation) pairs in ONE statement: each row is claimed or skipped on its own (a bumped
generation, a row already claimed), so a batch is exactly as safe as its rows one by one.

Lock order, kept by every writer of both tables: the post's row before its publications'.
A batch locks its posts in id order, so two batches sharing posts queue up instead of
deadlocking. Claims run on `autocommit` connections (one statement, one round trip).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    bindparam,
    func,
    inspect,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    AttemptOutcome,
    Connection,
    Post,
    PostStatus,
    Publication,
    PublicationAttempt,
    PublicationStatus,
)

_M = TypeVar("_M", Publication, Post, Connection)


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


def _claim_ctes(lp: Any, pub_id: Any, generation: Any) -> tuple[Any, Any]:
    """The claim's two writes, shared by the single and the batch statement: `c` moves the
    publication(s) SCHEDULED -> PUBLISHING where the generation matches and the post is locked
    (in `lp`); `a` records one attempt per claimed row (id, publication_id)."""
    c = (
        update(Publication)
        .where(
            Publication.id == pub_id,
            Publication.generation == generation,
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
        .returning(PublicationAttempt.id, PublicationAttempt.publication_id)
        .cte("a")
    )
    return c, a


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
    c, a = _claim_ctes(lp, bindparam("claim_id"), bindparam("claim_generation"))
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
    return None if row is None else _claimed(row, c)


def _claimed(row: Any, c: Any, accounts: dict[int, Connection] | None = None) -> Claimed:
    """One claimed row as the job's objects (detached, read only). `accounts`: the connections
    already built by this claim, shared by the rows of one account (a batch is mostly one
    account: building each row's Connection again was a third of the claim's CPU)."""
    values = row._mapping
    pub_values = {col.name: values[c.c[col.name]] for col in Publication.__table__.c}
    pub_values["attempts"] -= 1
    pub = _loaded(Publication, pub_values)
    post = _loaded(Post, {col.name: values[col] for col in Post.__table__.c})
    account = None if accounts is None else accounts.get(pub.connection_id)
    if account is None:
        account = _loaded(Connection, {col.name: values[col] for col in Connection.__table__.c})
        if accounts is not None:
            accounts[account.id] = account
    return Claimed(Work(pub, post, account, row[-1] == 1), int(values["attempt_id"]))


def _loaded(model: type[_M], values: dict[str, Any]) -> _M:
    """A detached instance holding `values`, made the way the ORM loads a row: its attribute
    dict filled at once. The mapped class's constructor sets each column through the
    instrumentation (and records it as a change): 30-40 µs a row against ~3 µs, ~4% of an
    engine's CPU in a publish burst."""
    obj = inspect(model).class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


@cache
def _claim_batch_statement() -> tuple[Select[Any], Any]:
    """`_claim_statement` for many rows: parameters `claim_ids`, `claim_generations` (arrays of
    one length, paired by position) and `claim_worker`. Built once."""
    v = select(
        func.unnest(bindparam("claim_ids", type_=ARRAY(BigInteger))).label("id"),
        func.unnest(bindparam("claim_generations", type_=ARRAY(Integer))).label("generation"),
    ).cte("v")
    lp = (
        select(Post.id)
        .where(Post.id.in_(select(Publication.post_id).where(Publication.id.in_(select(v.c.id)))))
        .order_by(Post.id)
        .with_for_update()
        .cte("lp")
    )
    c, a = _claim_ctes(lp, v.c.id, v.c.generation)
    p = (
        update(Post)
        .where(
            Post.id.in_(select(c.c.post_id)),
            Post.status.in_((PostStatus.SCHEDULED.value, PostStatus.DRAFT.value)),
        )
        .values(status=PostStatus.PUBLISHING.value)
        .cte("p")
    )
    stmt = (
        select(c, a.c.id.label("attempt_id"), Post, Connection, _siblings(c.c.post_id))
        .select_from(c)
        .join(a, a.c.publication_id == c.c.id)
        .join(Post, Post.id == c.c.post_id)
        .join(Connection, Connection.id == c.c.connection_id)
        .add_cte(p)
        .order_by(c.c.id)
    )
    return stmt, c


async def claim_batch(
    conn: AsyncConnection, pairs: Sequence[tuple[int, int]], worker: str
) -> list[Claimed]:
    """`claim` for many (publication, generation) pairs in one statement: returns the rows this
    caller got (the others were stale, gone, or claimed by someone else)."""
    if not pairs:
        return []
    stmt, c = _claim_batch_statement()
    params = {
        "claim_ids": [pub for pub, _ in pairs],
        "claim_generations": [gen for _, gen in pairs],
        "claim_worker": worker,
    }
    rows = (await conn.execute(stmt, params)).all()
    accounts: dict[int, Connection] = {}
    return [_claimed(row, c, accounts) for row in rows]


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
    return attempt_id


async def save_checkpoint(
    conn: AsyncConnection, publication_id: int, generation: int, checkpoint: dict[str, Any]
) -> None:
    await conn.execute(
        update(Publication)
        .where(Publication.id == publication_id, Publication.generation == generation)
        .values(checkpoint=checkpoint)
    )
