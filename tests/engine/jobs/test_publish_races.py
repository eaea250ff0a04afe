"""Never twice: reschedule/cancel racing the job, double delivery, Redis wiped and rebuilt, and a
worker SIGKILLed after the platform accepted the post but before Postgres heard of it."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from arq.worker import Retry

from engine import publish_queue
from engine.jobs.publish import PublishContext, run_publication
from engine.queue_specs import SPECS
from engine.redis_keys import PUBLISH
from engine.runner import supervise_worker
from engine.runtime import Runtime
from storage.database import Database
from storage.queries import publishing
from tests.support.process import EngineProcess
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import (
    KEY,
    MockPlatform,
    add_connection,
    add_post,
    drain,
    post_status,
    publications,
    soon,
    wait_until,
)


async def _status(db: Database, publication_id: int) -> str:
    (pub,) = [p for p in await publications(db) if p.id == publication_id]
    return pub.status


async def test_reschedule_before_the_job_runs_leaves_the_old_job_stale(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    conn = await add_connection(db)
    post, first = await add_post(pc.rt, [conn.id], soon(3600))
    (old,) = first.enqueue
    later = soon(7200)
    async with db.transaction() as session:
        change = await publishing.schedule_post(session, post.id, later, "Europe/Paris", "t")
    # Suppose Redis removal failed (or the old job was already picked): it runs anyway.
    assert await run_publication(pc, old.publication_id, old.generation) == "stale"
    await publish_queue.apply(pc.rt.redis, pc.rt.settings, change)
    queued = await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings)
    assert queued == [(old.publication_id, old.generation + 1)]
    score = await pc.rt.redis.zscore(
        publish_queue.queue_name(pc.rt.settings),
        publish_queue.publish_job_id(pc.rt.settings, old.publication_id, old.generation + 1),
    )
    assert score == int(later.timestamp() * 1000)
    assert platform.state.requests == 0


async def test_reschedule_and_cancel_refused_while_publishing(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(latency_s=0.4)
    conn = await add_connection(db)
    post, change = await add_post(pc.rt, [conn.id])
    (job,) = change.enqueue
    task = asyncio.create_task(run_publication(pc, job.publication_id, job.generation))

    async def publishing_now() -> bool:
        return await _status(db, job.publication_id) == "publishing"

    await wait_until(publishing_now, 5, "publication claimed")
    async with db.transaction() as session:
        with pytest.raises(publishing.PublishingError, match="publishing or done"):
            await publishing.schedule_post(session, post.id, soon(600), "UTC", "t")
    async with db.transaction() as session:
        with pytest.raises(publishing.PublishingError, match="publishing or done"):
            await publishing.cancel_post(session, post.id, "t")
    assert await task == "published"
    assert platform.state.stats()["created"] == 1
    assert await post_status(db, post.id) == "published"


async def test_cancel_racing_the_claim_exactly_one_wins(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    for round_ in range(20):
        conn = await add_connection(db, f"acct{round_}")
        post, change = await add_post(pc.rt, [conn.id], body=f"race {round_}")
        (job,) = change.enqueue

        async def cancel(post_id: int = post.id) -> str:
            try:
                async with db.transaction() as session:
                    await publishing.cancel_post(session, post_id, "t")
                return "cancelled"
            except publishing.PublishingError:
                return "refused"

        job_result, cancel_result = await asyncio.gather(
            run_publication(pc, job.publication_id, job.generation), cancel()
        )
        final = await _status(db, job.publication_id)
        posted = sum(1 for p in platform.state.posts if p.text == f"race {round_}")
        if cancel_result == "cancelled":
            assert (job_result, final, posted) == ("stale", "cancelled", 0) or (
                job_result == "raced" and final == "cancelled" and posted == 0
            )
        else:
            assert (job_result, final, posted) == ("published", "published", 1)


async def test_double_delivery_of_one_job_publishes_once(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    # honour_idempotency off: only our claim stands between two runs and two posts.
    platform.configure(latency_s=0.2, honour_idempotency=False)
    conn = await add_connection(db)
    _post, change = await add_post(pc.rt, [conn.id])
    (job,) = change.enqueue
    results = await asyncio.gather(
        *(run_publication(pc, job.publication_id, job.generation) for _ in range(5)),
        return_exceptions=True,
    )
    assert [r for r in results if r == "published"] == ["published"]
    # The others lost the claim, or saw it PUBLISHING and were told to come back later.
    assert all(r == "published" or r == "raced" or isinstance(r, Retry) for r in results)
    assert platform.state.stats()["created"] == 1
    # A late re-run after success does nothing.
    assert await run_publication(pc, job.publication_id, job.generation) == "stale"


async def test_redis_flushed_then_reconcile_rebuilds_every_pending_job(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    conn = await add_connection(db)
    other = await add_connection(db, "bob", "tok-bob")
    for n in range(30):
        await add_post(pc.rt, [conn.id, other.id], soon(3600 + n), body=f"later {n}")
    due_now, _ = await add_post(pc.rt, [conn.id], body="due now")
    before = set(await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings))
    assert len(before) == 61
    # Redis loses everything under our prefix.
    keys = [k async for k in pc.rt.redis.scan_iter(match="*" + pc.rt.settings.redis_prefix + "*")]
    await pc.rt.redis.delete(*keys)
    assert await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings) == []
    report = await publish_queue.reconcile(pc.rt)
    assert report.enqueued == 61 and report.pending == 61
    assert set(await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings)) == before
    # Idempotent: a second pass adds nothing.
    assert (await publish_queue.reconcile(pc.rt)).enqueued == 0
    # A real arq worker publishes the due one, exactly once.
    # The worker's publishers reach the mock platform through the settings it runs with.
    rt = replace(pc.rt, settings=pc.rt.settings.replace(tracking={"mockstagram_url": platform.url}))
    stop = asyncio.Event()
    worker = asyncio.create_task(supervise_worker(rt, stop, SPECS[PUBLISH]))
    try:

        async def published() -> bool:
            return await post_status(db, due_now.id) == "published"

        await wait_until(published, 15, "due post published by the worker")
    finally:
        stop.set()
        await asyncio.wait_for(worker, 15)
    assert platform.state.stats()["created"] == 1


async def test_reconcile_removes_jobs_of_old_generations(pc: PublishContext, db: Database) -> None:
    conn = await add_connection(db)
    post, first = await add_post(pc.rt, [conn.id], soon(3600))
    async with db.transaction() as session:
        await publishing.schedule_post(session, post.id, soon(7200), "UTC", "t")
    # The reschedule's queue update never happened (Redis blip): reconcile repairs it.
    (old,) = first.enqueue
    report = await publish_queue.reconcile(pc.rt)
    assert report.removed == 1 and report.enqueued == 1
    queued = await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings)
    assert queued == [(old.publication_id, old.generation + 1)]


async def test_orphaned_publishing_row_is_taken_over_verify_first(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    """A worker claimed, posted, and vanished with its job (Redis wiped). No duplicate."""
    platform.configure(honour_idempotency=False)
    conn = await add_connection(db)
    post, change = await add_post(pc.rt, [conn.id])
    (job,) = change.enqueue
    await publish_queue.remove_publish_jobs(pc.rt.redis, pc.rt.settings, [(job.publication_id, 1)])
    async with publishing.autocommit(db.engine) as conn:
        assert await publishing.claim(conn, job.publication_id, job.generation, "dead")
    # What the dead worker managed to do: the platform has the post.
    work = None
    async with db.session() as session:
        work = await publishing.load_work(session, job.publication_id)
    assert work is not None
    request_body = {"text": work.post.body, "media": []}
    response = await pc.client.post(
        f"{platform.url}/publishing/v1/alice/posts",
        json=request_body,
        headers={
            "Authorization": "Bearer tok-alice",
            "Idempotency-Key": work.publication.idempotency_key,
        },
    )
    assert response.status_code == 201
    # Too fresh to take over: reconcile leaves it alone...
    assert (await publish_queue.reconcile(pc.rt)).enqueued == 0
    # ...until it is older than the job time limit.
    report = await publish_queue.reconcile(pc.rt, orphan_after_s=0)
    assert report.enqueued == 1
    with pytest.raises(Retry):
        await run_publication(pc, job.publication_id, job.generation)
    async with db.session() as session:
        from sqlalchemy import update

        from storage.models import Publication

        await session.execute(
            update(Publication)
            .where(Publication.id == job.publication_id)
            .values(started_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
        await session.commit()
    assert await drain(pc) == ["found"]
    assert platform.state.stats()["created"] == 1
    async with db.session() as session:
        outcomes = [a.outcome for a in await publishing.attempts_of(session, job.publication_id)]
    assert outcomes == ["interrupted", "found"]
    assert await post_status(db, post.id) == "published"


@pytest.mark.slow
async def test_sigkill_after_platform_accepted_publishes_no_duplicate(
    rt: Runtime, db: Database, platform: MockPlatform, tmp_path: Path
) -> None:
    # The platform stores the post and holds its answer; it dedupes nothing, like X.
    platform.configure(script=["lost"], lost_delay_s=30, honour_idempotency=False)
    conn = await add_connection(db)
    post, _ = await add_post(rt, [conn.id])
    env = {"ENCRYPTION_KEY": KEY, "MOCKSTAGRAM_URL": platform.url}
    first = EngineProcess(rt.settings, tmp_path / "first.log", "--role", "worker", **env)
    try:

        async def accepted() -> bool:
            return platform.state.stats()["created"] == 1

        await wait_until(accepted, 20, "platform accepted the post")
        first.signal(signal.SIGKILL)
        await first.exit_code(10)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    (pub,) = await publications(db, post.id)
    assert pub.status == "publishing"  # Postgres never heard back
    second = EngineProcess(rt.settings, tmp_path / "second.log", **env)
    try:

        async def settled() -> bool:
            return await post_status(db, post.id) == "published"

        # arq re-delivers after the job time limit (5 s in tests) + 10 s.
        await wait_until(settled, 40, "publication settled by the second engine")
    finally:
        second.signal(signal.SIGTERM)
        await second.exit_code(30)
    stats = platform.state.stats()
    assert stats["created"] == 1 and stats["duplicate_texts"] == 0
    async with db.session() as session:
        outcomes = [a.outcome for a in await publishing.attempts_of(session, pub.id)]
    assert outcomes == ["interrupted", "found"]
