"""The publishing lifecycle against the mock platform: schedule, publish, retry, fail, reauth,
outcome unknown, breaker and limits — with real Postgres, real Redis and a real HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine import publish_queue
from engine.jobs.publish import PublishContext, PublishPolicy, run_publication
from engine.publishers.mock import MockPublisher
from engine.resilience import CircuitBreaker, Quota
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Connection, Platform
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
    run_queued,
    soon,
)


async def test_schedule_makes_one_deterministic_deferred_job_per_publication(
    rt: Runtime, db: Database
) -> None:
    a = await add_connection(db, "alice")
    b = await add_connection(db, "bob", "tok-bob")
    when = soon(3600)
    post, change = await add_post(rt, [a.id, b.id], when)
    pubs = await publications(db, post.id)
    assert [p.status for p in pubs] == ["scheduled", "scheduled"]
    assert await post_status(db, post.id) == "scheduled"
    name = publish_queue.queue_name(rt.settings)
    scored = await rt.redis.zrange(name, 0, -1, withscores=True)
    expected = {f"{rt.settings.redis_prefix}:publish:{p.id}:{p.generation}" for p in pubs}
    assert {raw.decode() for raw, _ in scored} == expected
    assert {int(score) for _, score in scored} == {int(when.timestamp() * 1000)}
    # Applying the same change again adds nothing: ids are deterministic.
    assert await publish_queue.enqueue_publications(rt.redis, rt.settings, change.enqueue) == 0


async def test_full_lifecycle_publishes_each_account_once(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    a = await add_connection(db, "alice")
    b = await add_connection(db, "bob", "tok-bob")
    post, _ = await add_post(pc.rt, [a.id, b.id], body="launch day")
    results = await drain(pc)
    assert sorted(results) == ["published", "published"]
    pubs = await publications(db, post.id)
    assert all(p.status == "published" and p.external_id and p.external_url for p in pubs)
    assert await post_status(db, post.id) == "published"
    stats = platform.state.stats()
    assert stats["created"] == 2 and stats["duplicate_keys"] == 0
    assert {p.account for p in platform.state.posts} == {"alice", "bob"}
    async with db.session() as session:
        attempts = await publishing.attempts_of(session, pubs[0].id)
    assert [x.outcome for x in attempts] == ["published"]
    assert attempts[0].lateness_ms is not None and attempts[0].lateness_ms >= 0


async def test_transient_error_retries_with_backoff_then_publishes(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(script=["unavailable", "rate_limited", "ok"], retry_after_s=0)
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    assert await drain(pc) == ["retry", "retry", "published"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "published" and pub.attempts == 3 and pub.generation == 3
    async with db.session() as session:
        outcomes = [a.outcome for a in await publishing.attempts_of(session, pub.id)]
    assert outcomes == ["transient", "transient", "published"]
    assert platform.state.stats()["created"] == 1


async def test_gives_up_after_max_attempts_with_the_last_error(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(script=["unavailable"] * FAST.max_attempts)
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    results = await drain(pc)
    assert results == ["retry"] * (FAST.max_attempts - 1) + ["failed"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "failed"
    assert pub.last_error and "gave up after 4 attempts" in pub.last_error
    assert "503" in pub.last_error
    assert await post_status(db, post.id) == "failed"
    # Retry from the console: a new generation, published this time.
    async with db.transaction() as session:
        change = await publishing.retry_publication(session, pub.id, actor="test")
    await publish_queue.apply(pc.rt.redis, pc.rt.settings, change)
    assert await drain(pc) == ["published"]
    assert await post_status(db, post.id) == "published"


async def test_lost_response_is_looked_up_by_idempotency_key_not_resent(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    # The platform stores the post, then answers after the client gave up (0.5 s).
    platform.configure(script=["lost"], lost_delay_s=1.5, honour_idempotency=False)
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    assert await drain(pc) == ["retry", "found"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "published" and not pub.outcome_unknown and not pub.verify_first
    assert pub.external_id == platform.state.posts[0].id
    async with db.session() as session:
        outcomes = [a.outcome for a in await publishing.attempts_of(session, pub.id)]
    assert outcomes == ["unknown", "found"]
    # Even though this mock does not dedupe by key, there is exactly one post.
    assert platform.state.stats()["created"] == 1


class NoLookupPublisher(MockPublisher):
    can_lookup = False


async def test_unknown_outcome_without_lookup_waits_for_a_person(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    pc.publishers[Platform.MOCK] = NoLookupPublisher(pc.client, platform.url)
    platform.configure(script=["lost"], lost_delay_s=1.5)
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    assert await drain(pc) == ["unknown"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "unknown" and pub.outcome_unknown
    assert await post_status(db, post.id) == "publishing"
    async with db.session() as session:
        attention = await publishing.needing_attention(session)
    assert [p.id for p in attention] == [pub.id]
    # A person checked: it is not there. Send it again.
    async with db.transaction() as session:
        change = await publishing.resolve_unknown(session, pub.id, published=False, actor="t")
    await publish_queue.apply(pc.rt.redis, pc.rt.settings, change)
    assert await drain(pc) == ["published"]
    assert await post_status(db, post.id) == "published"


async def test_resolve_unknown_as_published_keeps_the_url(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    pc.publishers[Platform.MOCK] = NoLookupPublisher(pc.client, platform.url)
    platform.configure(script=["server_error"])
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    assert await drain(pc) == ["unknown"]
    (pub,) = await publications(db, post.id)
    async with db.transaction() as session:
        change = await publishing.resolve_unknown(
            session, pub.id, published=True, actor="t", external_url="https://m/p/1"
        )
    assert change.enqueue == []
    (pub,) = await publications(db, post.id)
    assert pub.status == "published" and pub.external_url == "https://m/p/1"
    assert platform.state.stats()["created"] == 1


async def test_unauthorized_marks_the_connection_needs_reauth(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(revoked=["tok-alice"])
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    assert await drain(pc) == ["failed"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "failed" and pub.last_error
    assert "needs re-authorisation" in pub.last_error
    async with db.session() as session:
        fresh = await session.get(Connection, conn.id)
    assert fresh is not None and fresh.status == "needs_reauth"
    # Reconnect with a fresh token, retry: published.
    platform.configure()
    await add_connection(db, "alice", "tok-alice-2")
    async with db.transaction() as session:
        change = await publishing.retry_publication(session, pub.id, actor="t")
    await publish_queue.apply(pc.rt.redis, pc.rt.settings, change)
    assert await drain(pc) == ["published"]


async def test_expired_token_defers_without_calling_the_platform(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    # Issue 12: a post to an account that needs re-authorisation waits for the reconnect.
    conn = await add_connection(db, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    post, _ = await add_post(pc.rt, [conn.id])
    assert await run_queued(pc) == ["deferred"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "scheduled" and pub.last_error and "re-authorisation" in pub.last_error
    assert platform.state.requests == 0
    async with db.session() as session:
        fresh = await session.get(Connection, conn.id)
    assert fresh is not None and fresh.status == "needs_reauth"


async def test_breaker_open_defers_instead_of_failing(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    breaker = CircuitBreaker(pc.rt.redis, pc.rt.settings, "mock")
    # Open for a minute: a busy machine cannot outlast it between here and the asserts.
    await breaker.force_open(60, "test")
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    (job,) = await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings)
    assert await run_queued(pc) == ["deferred"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "scheduled" and pub.attempts == 0 and pub.generation == job[1] + 1
    assert pub.last_error and "breaker open" in pub.last_error
    # Deferred to when the breaker lets calls through again, not failed.
    assert pub.due_at is not None and pub.due_at > datetime.now(UTC) + timedelta(seconds=30)
    assert await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings) == [(pub.id, job[1] + 1)]
    assert platform.state.requests == 0
    # The platform recovers (closed by hand rather than waiting the minute): the deferred job,
    # run as a worker would run it, publishes.
    await breaker.reset()
    assert await run_queued(pc) == ["published"]


async def test_repeated_platform_failures_open_the_breaker_for_everyone(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(rate=1.0, kinds=["unavailable"])
    conn = await add_connection(db)
    for n in range(12):
        await add_post(pc.rt, [conn.id], body=f"post {n}")
    results = await run_queued(pc)
    # Ten consecutive failures open it; the rest are deferred without a request.
    assert results.count("retry") == 10 and results.count("deferred") == 2
    assert platform.state.requests == 10
    status = await CircuitBreaker(pc.rt.redis, pc.rt.settings, "mock").status()
    assert status.state == "open"


async def test_publishing_limit_defers_the_excess(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    limited = MockPublisher(pc.client, platform.url)
    limited.publish_limit = Quota("mock-publish-test", calls=2, per_s=3600)
    pc.publishers[Platform.MOCK] = limited
    conn = await add_connection(db)
    for n in range(3):
        await add_post(pc.rt, [conn.id], body=f"post {n}")
    results = await run_queued(pc)
    assert sorted(results) == ["deferred", "published", "published"]
    assert platform.state.stats()["created"] == 2
    deferred = [p for p in await publications(db) if p.status == "scheduled"]
    assert len(deferred) == 1 and deferred[0].last_error
    assert "publishing limit" in deferred[0].last_error


async def test_missing_encryption_key_defers_and_says_so(
    rt: Runtime, db: Database, platform: MockPlatform
) -> None:
    no_key = rt.settings.model_copy(update={"encryption_key": None})
    bare = Runtime(settings=no_key, db=rt.db, redis=rt.redis, name="nokey")
    context = PublishContext(bare, policy=FAST, base_urls={Platform.MOCK: platform.url})
    try:
        conn = await add_connection(db)
        post, _ = await add_post(rt, [conn.id])
        (job,) = await publish_queue.queued_jobs(rt.redis, rt.settings)
        await publish_queue.remove_publish_jobs(rt.redis, rt.settings, [job])
        assert await run_publication(context, *job) == "deferred"
        (pub,) = await publications(db, post.id)
        assert pub.status == "scheduled" and pub.last_error
        assert "ENCRYPTION_KEY is not set" in pub.last_error
    finally:
        await context.close()


async def test_rejected_post_fails_with_the_platform_message(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(script=["rejected"])
    conn = await add_connection(db)
    post, _ = await add_post(pc.rt, [conn.id])
    assert await drain(pc) == ["failed"]
    (pub,) = await publications(db, post.id)
    assert pub.status == "failed" and pub.last_error and "400" in pub.last_error
    assert "media type not supported" in pub.last_error  # the platform's own words


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = PublishPolicy(backoff_base_s=1, backoff_max_s=10)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        draws = [policy.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert len({round(d, 6) for d in draws}) > 100  # jittered, not fixed


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "draft"),
        (["draft", "draft"], "draft"),
        (["scheduled", "scheduled"], "scheduled"),
        (["publishing", "scheduled"], "publishing"),
        (["published", "scheduled"], "publishing"),
        (["published", "published"], "published"),
        (["published", "failed"], "partial"),
        (["failed", "failed"], "failed"),
        (["cancelled", "cancelled"], "cancelled"),
        (["published", "cancelled"], "published"),
        (["unknown", "published"], "publishing"),
    ],
)
def test_post_status_follows_its_publications(statuses: list[str], expected: str) -> None:
    assert publishing.derive_post_status(statuses) == expected


async def test_job_of_a_deleted_publication_is_dropped(pc: PublishContext) -> None:
    assert await run_publication(pc, 999_999, 1) == "gone"
