"""Batch publish jobs: many publications due together, one claim, concurrent sends, and every
guarantee of the single path per row (generation check, claim before send, verify-first on an
unknown outcome, never twice)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from arq.worker import Retry
from sqlalchemy import update

from engine import publish_queue
from engine.jobs.publish import PublishContext
from engine.jobs.publish_batch import run_batch
from engine.jobs.send_slots import SendSlots
from engine.runtime import Runtime
from storage.database import Database
from storage.models import Platform, Publication
from storage.queries import publishing
from storage.queries.publishing import JobRef
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import (
    FAST,
    MockPlatform,
    add_connection,
    drain,
    publications,
    soon,
)


async def _burst(pc: PublishContext, db: Database, posts: int, accounts: int = 2) -> list[JobRef]:
    """`posts` one-account posts due at one instant, spread over `accounts`, enqueued together
    (as a burst or a rebuild from Postgres enqueues them). Returns their jobs."""
    conns = [await add_connection(db, f"acct{n}", token=f"tok-acct{n}") for n in range(accounts)]
    when = soon(0)
    refs: list[JobRef] = []
    for n in range(posts):
        async with db.transaction() as session:
            _, change = await publishing.create_post(
                session,
                publishing.PostInput(
                    body=f"batch post {n}",
                    connection_ids=[conns[n % accounts].id],
                    scheduled_at=when,
                ),
                actor="test",
            )
        refs.extend(change.enqueue)
    await publish_queue.enqueue_publications(pc.rt.redis, pc.rt.settings, refs)
    return refs


async def _batches(pc: PublishContext) -> dict[str, list[tuple[int, int]]]:
    return await publish_queue.queued_batches(pc.rt.redis, pc.rt.settings)


def test_plan_batches_per_instant_and_account(pub_settings: object) -> None:
    settings = pub_settings
    due = datetime(2030, 1, 1, tzinfo=UTC)
    few = [JobRef(n, 1, due, n % 2) for n in range(publish_queue.BATCH_MIN - 1)]
    jobs = list(publish_queue.plan_jobs(settings, few))  # type: ignore[arg-type]
    assert {j.function for j in jobs} == {publish_queue.PUBLISH_FUNCTION}
    many = [JobRef(n, 1, due, n % 3) for n in range(250)]
    later = [JobRef(1000 + n, 2, due + timedelta(seconds=1), 7) for n in range(10)]
    jobs = list(publish_queue.plan_jobs(settings, [*many, *later]))  # type: ignore[arg-type]
    assert [len(j.args[0]) for j in jobs] == [100, 100, 50, 10]
    # One account's publications sit together, so a batch is mostly one token.
    accounts = [pub % 3 for pub, _ in jobs[0].args[0]]
    assert accounts == [0] * 84 + [1] * 16
    # Same pairs, same ids: replicas enqueueing the same burst make one job each.
    again = list(publish_queue.plan_jobs(settings, reversed([*many, *later])))  # type: ignore[arg-type]
    assert [j.job_id for j in again] == [j.job_id for j in jobs]


async def test_a_burst_goes_as_batches_and_publishes_everything_once(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    refs = await _burst(pc, db, 24, accounts=3)
    batches = await _batches(pc)
    assert len(batches) == 1 and sorted(next(iter(batches.values()))) == sorted(
        (r.publication_id, r.generation) for r in refs
    )
    assert await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings) == []
    assert Counter(await drain(pc)) == {"published": 24}
    assert {p.status for p in await publications(db)} == {"published"}
    stats = platform.state.stats()
    assert stats["created"] == 24 and stats["requests"] == 24
    async with db.session() as session:
        for ref in refs:
            outcomes = [
                a.outcome for a in await publishing.attempts_of(session, ref.publication_id)
            ]
            assert outcomes == ["published"]


async def test_one_send_times_out_only_that_row_is_verified_first(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    # One request is stored and then its answer is held past the client's timeout.
    platform.configure(script=["lost"], lost_delay_s=1.5, honour_idempotency=False)
    refs = await _burst(pc, db, 10, accounts=1)
    results = await drain(pc)
    assert Counter(results) == {"published": 9, "retry": 1, "found": 1}
    stats = platform.state.stats()
    assert stats["created"] == 10 and stats["duplicate_texts"] == 0
    async with db.session() as session:
        histories = [
            [a.outcome for a in await publishing.attempts_of(session, ref.publication_id)]
            for ref in refs
        ]
    assert sorted(histories) == sorted([["published"]] * 9 + [["unknown", "found"]])
    # The platform saw 10 publishes (its count leaves lookups out): nothing was sent twice.
    assert stats["requests"] == 10


async def test_a_generation_bumped_after_enqueue_is_skipped_by_the_batch(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    refs = await _burst(pc, db, 10, accounts=2)
    ((_, pairs),) = (await _batches(pc)).items()
    moved, cancelled = refs[0], refs[1]
    async with db.transaction() as session:
        work = await publishing.load_work(session, moved.publication_id)
        assert work is not None
        change = await publishing.schedule_post(session, work.post.id, soon(3600), "UTC", "t")
    async with db.transaction() as session:
        work = await publishing.load_work(session, cancelled.publication_id)
        assert work is not None
        await publishing.cancel_post(session, work.post.id, "t")
    results = await run_batch(pc, pairs)
    assert Counter(results) == {"published": 8, "stale": 2}
    by_id = {p.id: p for p in await publications(db)}
    assert by_id[moved.publication_id].status == "scheduled"
    assert by_id[moved.publication_id].generation == change.enqueue[0].generation
    assert by_id[cancelled.publication_id].status == "cancelled"
    assert platform.state.stats()["created"] == 8


async def test_two_replicas_racing_the_same_batch_publish_each_row_once(
    pc: PublishContext, rt: Runtime, db: Database, platform: MockPlatform
) -> None:
    platform.configure(honour_idempotency=False, latency_s=0.05)
    other_rt = Runtime(settings=rt.settings, db=rt.db, redis=rt.redis, name="replica-2")
    other = PublishContext(other_rt, policy=FAST, base_urls={Platform.MOCK: platform.url})
    try:
        refs = await _burst(pc, db, 30, accounts=3)
        ((_, pairs),) = (await _batches(pc)).items()
        runs = await asyncio.gather(
            run_batch(pc, pairs), run_batch(other, pairs), return_exceptions=True
        )
        outcomes: list[str] = []
        for ctx, run in zip((pc, other), runs, strict=True):
            if isinstance(run, Retry):
                # Its rows were still PUBLISHING under the other replica: arq re-runs the job
                # later, and by then each row is done.
                run = await run_batch(ctx, pairs)
            assert isinstance(run, list)
            outcomes.extend(run)
    finally:
        await other.close()
    both = Counter(outcomes)
    assert both["published"] == 30
    assert set(both) <= {"published", "stale", "raced"}
    stats = platform.state.stats()
    assert stats["created"] == 30 and stats["duplicate_texts"] == 0
    assert {p.status for p in await publications(db)} == {"published"}
    assert len(refs) == 30


async def test_a_worker_killed_mid_batch_leaves_rows_taken_over_later_none_twice(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    platform.configure(honour_idempotency=False)
    refs = await _burst(pc, db, 12, accounts=2)
    ((_, pairs),) = (await _batches(pc)).items()
    # The dead worker claimed the whole batch and got 4 posts out before it died.
    async with publishing.autocommit(db.engine) as conn:
        claimed = await publishing.claim_batch(conn, pairs, "dead")
    assert len(claimed) == 12
    sent = claimed[:4]
    for item in sent:
        response = await pc.client.post(
            f"{platform.url}/publishing/v1/{item.work.connection.account_id}/posts",
            json={"text": item.work.post.body, "media": []},
            headers={
                "Authorization": f"Bearer tok-{item.work.connection.account_id}",
                "Idempotency-Key": item.work.publication.idempotency_key,
            },
        )
        assert response.status_code == 201
    # arq re-delivers the batch: too fresh to take over, it comes back later...
    with pytest.raises(Retry):
        await run_batch(pc, pairs)
    assert {p.status for p in await publications(db)} == {"publishing"}
    # ...when the attempts are older than the job time limit.
    async with db.transaction() as session:
        await session.execute(
            update(Publication)
            .where(Publication.id.in_([r.publication_id for r in refs]))
            .values(started_at=datetime.now(UTC) - timedelta(seconds=FAST.timeout_s + 1))
        )
    results = await run_batch(pc, pairs)
    assert Counter(results) == {"found": 4, "published": 8}
    stats = platform.state.stats()
    assert stats["created"] == 12 and stats["duplicate_texts"] == 0
    async with db.session() as session:
        found = 0
        for ref in refs:
            outcomes = [
                a.outcome for a in await publishing.attempts_of(session, ref.publication_id)
            ]
            assert outcomes[0] == "interrupted" and len(outcomes) == 2
            found += outcomes[1] == "found"
    assert found == 4
    # A third delivery finds nothing left to do.
    assert Counter(await run_batch(pc, pairs)) == {"stale": 12}


async def test_redis_wiped_rebuilds_a_burst_as_batches(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    refs = await _burst(pc, db, 20, accounts=2)
    ids = list(await _batches(pc))
    await publish_queue.remove_batch_jobs(pc.rt.redis, pc.rt.settings, ids)
    report = await publish_queue.reconcile(pc.rt)
    assert report.enqueued == 1 and report.pending == 20
    assert sorted(p for pairs in (await _batches(pc)).values() for p in pairs) == sorted(
        (r.publication_id, r.generation) for r in refs
    )
    # A second reconcile finds every pair covered: nothing new.
    assert (await publish_queue.reconcile(pc.rt)).enqueued == 0
    assert Counter(await drain(pc)) == {"published": 20}
    assert platform.state.stats()["created"] == 20


async def test_a_batch_claims_only_what_its_send_slots_allow_and_hands_on_the_rest(
    pc: PublishContext, db: Database, platform: MockPlatform
) -> None:
    # Two sends at a time, each slow: the job's claiming window closes before all 20 are out.
    pc.slots = SendSlots(2)
    platform.configure(latency_s=0.3, honour_idempotency=False)
    refs = await _burst(pc, db, 20, accounts=1)
    ((first_id, pairs),) = (await _batches(pc)).items()
    await publish_queue.remove_batch_jobs(pc.rt.redis, pc.rt.settings, [first_id])
    first = await run_batch(pc, pairs)
    assert 0 < len(first) < 20 and set(first) == {"published"}
    # The rows it never claimed are still scheduled, under a follow-up batch job.
    (follow_up,) = (await _batches(pc)).values()
    assert len(follow_up) == 20 - len(first)
    scheduled = {p.id for p in await publications(db) if p.status == "scheduled"}
    assert scheduled == {pub for pub, _ in follow_up}
    rest = await drain(pc, deadline_s=60)
    assert Counter([*first, *rest]) == {"published": 20}
    stats = platform.state.stats()
    assert stats["created"] == 20 and stats["duplicate_texts"] == 0
    assert len(refs) == 20
