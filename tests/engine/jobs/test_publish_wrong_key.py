"""A wrong ENCRYPTION_KEY is a configuration error: publications defer with the reason, and
neither the platform (breaker) nor the account (needs-reauth) is blamed; nothing is failed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import update

from engine import publish_queue
from engine.jobs.publish import PublishContext, run_publication
from engine.resilience import CircuitBreaker
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Platform, Publication
from storage.queries import publishing
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import (
    FAST,
    MockPlatform,
    add_connection,
    add_post,
    drain,
    post_status,
    publications,
)


@pytest.fixture
async def wrong_pc(rt: Runtime, platform: MockPlatform) -> AsyncIterator[PublishContext]:
    """A worker whose ENCRYPTION_KEY is a valid Fernet key, but not the tokens' key."""
    wrong = rt.settings.model_copy(
        update={"encryption_key": SecretStr(Fernet.generate_key().decode())}
    )
    context = PublishContext(
        Runtime(settings=wrong, db=rt.db, redis=rt.redis, name="wrong-key"),
        policy=FAST,
        base_urls={Platform.MOCK: platform.url},
    )
    yield context
    await context.close()


async def _connection_status(db: Database, connection_id: int) -> tuple[str, str | None]:
    async with db.session() as session:
        conn = await publishing.get_connection(session, connection_id)
    assert conn is not None
    return conn.status, conn.status_reason


async def test_wrong_key_defers_blames_nobody_and_publishes_once_the_key_is_right(
    rt: Runtime,
    db: Database,
    platform: MockPlatform,
    pc: PublishContext,
    wrong_pc: PublishContext,
) -> None:
    breaker = CircuitBreaker(rt.redis, rt.settings, Platform.MOCK.value)
    # Cool-down over: the next caller of allow() would take the half-open probe lease.
    await breaker.force_open(0, "earlier outage")
    before = await rt.redis.hgetall(breaker.key)  # type: ignore[misc]
    conn = await add_connection(db)
    post, _ = await add_post(rt, [conn.id])
    (job,) = await publish_queue.queued_jobs(rt.redis, rt.settings)
    await publish_queue.remove_publish_jobs(rt.redis, rt.settings, [job])

    assert await run_publication(wrong_pc, *job) == "deferred"

    (pub,) = await publications(db, post.id)
    assert pub.status == "scheduled" and pub.attempts == 0
    assert pub.last_error and "does not decrypt with ENCRYPTION_KEY" in pub.last_error
    assert await post_status(db, post.id) == "scheduled"
    assert await _connection_status(db, conn.id) == ("ok", None)
    assert await rt.redis.hgetall(breaker.key) == before  # type: ignore[misc]
    assert platform.state.requests == 0
    # Nothing was lost: the right key publishes it from the queue the deferral left.
    assert await drain(pc) == ["published"]
    assert platform.state.stats()["created"] == 1


async def test_wrong_key_on_a_take_over_defers_and_keeps_verify_first(
    rt: Runtime, db: Database, platform: MockPlatform, wrong_pc: PublishContext
) -> None:
    """A worker died mid-attempt; the worker taking over has the wrong key: no verdict yet."""
    conn = await add_connection(db)
    post, change = await add_post(rt, [conn.id])
    (job,) = change.enqueue
    await publish_queue.remove_publish_jobs(rt.redis, rt.settings, [(job.publication_id, 1)])
    async with publishing.autocommit(db.engine) as db_conn:
        assert await publishing.claim(db_conn, job.publication_id, job.generation, "dead")
    async with db.session() as session:
        await session.execute(
            update(Publication)
            .where(Publication.id == job.publication_id)
            .values(started_at=datetime.now(UTC) - timedelta(hours=1))
        )
        await session.commit()

    assert await run_publication(wrong_pc, job.publication_id, job.generation) == "deferred"

    (pub,) = await publications(db, post.id)
    assert pub.status == "scheduled" and pub.verify_first
    assert pub.last_error and "ENCRYPTION_KEY" in pub.last_error
    assert await _connection_status(db, conn.id) == ("ok", None)
    assert platform.state.requests == 0
