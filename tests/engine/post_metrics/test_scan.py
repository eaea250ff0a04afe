"""The metrics scan against the mock platform on loopback (real Postgres and Redis): due steps by
a hand-moved clock, batching, idempotency, and deferral on a platform error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from sqlalchemy import update

from engine import redis_keys
from engine.jobs.publish import PublishContext
from engine.post_metrics.scan import SCAN_FUNCTION, cron_jobs, run_scan
from engine.queue_specs import SPECS
from engine.runtime import Runtime
from engine.worker import build_worker
from storage.models import Connection, Platform, Post, PostStatus, Publication, PublicationStatus
from storage.settings import Settings
from tests.support.clock import ManualClock
from tests.support.post_metrics import *  # noqa: F403  (fixtures)
from tests.support.post_metrics import START, MetricsMock, hours, metric_rows, seed_published
from tests.support.publishing import *  # noqa: F403  (fixtures)
from tests.support.publishing import FAST, add_connection, add_post, drain, publications, soon


def _urls(mock: MetricsMock) -> dict[str, str]:
    return {Platform.MOCK: mock.url}


@pytest.fixture
async def metrics_pc(rt: Runtime, metrics_mock: MetricsMock) -> AsyncIterator[PublishContext]:
    context = PublishContext(rt, policy=FAST, base_urls={Platform.MOCK: metrics_mock.url})
    yield context
    await context.close()


async def test_published_post_gets_metrics_at_each_step(
    rt: Runtime, metrics_pc: PublishContext, metrics_mock: MetricsMock, http: httpx.AsyncClient
) -> None:
    conn = await add_connection(rt.db)
    post, _ = await add_post(rt, [conn.id], when=soon(0))
    await drain(metrics_pc)
    [pub] = await publications(rt.db, post.id)
    assert pub.status == PublicationStatus.PUBLISHED and pub.published_at is not None
    clock = ManualClock(pub.published_at + hours(0.5))
    metrics_mock.clock.now = clock.now

    async def scan() -> int:
        metrics_mock.clock.now = clock.now
        report = await run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock))
        assert not report.deferred
        return report.written

    assert await scan() == 0  # not yet an hour old
    clock.advance(3600)
    assert await scan() == 1
    assert await scan() == 0  # the same due step again: nothing new
    clock.advance(6 * 3600)
    assert await scan() == 1
    rows = await metric_rows(rt.db)
    assert [r.step_s for r in rows] == [3600, 21_600]
    assert rows[0].views is not None and rows[1].views is not None
    assert 0 < rows[0].views < rows[1].views
    assert rows[1].fetched_at == clock.now


async def test_concurrent_scans_write_each_step_once(
    rt: Runtime, metrics_mock: MetricsMock, http: httpx.AsyncClient
) -> None:
    conn = await add_connection(rt.db)
    ids = [f"p{n}" for n in range(10)]
    await seed_published(rt.db, conn, ids, START, metrics_mock)
    clock = ManualClock(START + hours(1))
    metrics_mock.clock.now = clock.now
    reports = await asyncio.gather(
        *(run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock)) for _ in "abc")
    )
    assert sum(r.written for r in reports) == 10
    rows = await metric_rows(rt.db)
    assert len(rows) == 10 and {r.step_s for r in rows} == {3600}


async def test_mock_posts_are_read_fifty_ids_per_call(
    rt: Runtime, metrics_mock: MetricsMock, http: httpx.AsyncClient
) -> None:
    conn = await add_connection(rt.db)
    await seed_published(rt.db, conn, [f"m{n}" for n in range(120)], START, metrics_mock)
    clock = ManualClock(START + hours(1))
    metrics_mock.clock.now = clock.now
    report = await run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock))
    assert (report.calls, report.written) == (3, 120)
    assert metrics_mock.metrics.counters["calls"] == 3
    assert metrics_mock.metrics.counters["ids"] == 120


async def test_youtube_reads_fifty_videos_in_one_call(rt: Runtime, http: httpx.AsyncClient) -> None:
    conn = await add_connection(rt.db, "chan", token="yt-token", platform=Platform.YOUTUBE)
    ids = [f"vid{n:02d}" for n in range(50)]
    await seed_published(rt.db, conn, ids, START)
    base = "https://yt.test"
    items = [
        {"id": i, "statistics": {"viewCount": "10", "likeCount": "2", "commentCount": "1"}}
        for i in ids
    ]
    with respx.mock(assert_all_called=True) as router:
        route = router.get(f"{base}/youtube/v3/videos").respond(200, json={"items": items})
        report = await run_scan(
            rt.db, rt.redis, rt.settings, http, ManualClock(START + hours(1)), {"youtube": base}
        )
    assert route.call_count == 1
    request = route.calls[0].request
    assert request.url.params["id"].split(",") == ids
    assert request.headers["Authorization"] == "Bearer yt-token"
    assert report.written == 50
    rows = await metric_rows(rt.db)
    assert {(r.views, r.likes, r.comments, r.shares) for r in rows} == {(10, 2, 1, None)}


async def test_platform_error_defers_the_batch_and_never_fails_the_post(
    rt: Runtime, metrics_mock: MetricsMock, http: httpx.AsyncClient
) -> None:
    conn = await add_connection(rt.db)
    pub_ids = await seed_published(rt.db, conn, ["e1", "e2"], START, metrics_mock)
    metrics_mock.metrics.script = ["unavailable"]
    clock = ManualClock(START + hours(1))
    metrics_mock.clock.now = clock.now
    report = await run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock))
    assert report.written == 0
    assert set(report.deferred) == set(pub_ids)
    assert "503" in next(iter(report.deferred.values()))
    assert await metric_rows(rt.db) == []
    async with rt.db.session() as session:
        for pub_id in pub_ids:
            pub = await session.get(Publication, pub_id)
            assert pub is not None and pub.status == PublicationStatus.PUBLISHED
            post = await session.get(Post, pub.post_id)
            assert post is not None and post.status == PostStatus.PUBLISHED
    # The next scan takes the deferred reads again.
    clock.advance(300)
    report = await run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock))
    assert (report.written, report.deferred) == (2, {})


async def test_the_metrics_queue_worker_runs_a_scan(rt: Runtime, metrics_mock: MetricsMock) -> None:
    # The worker's scan reads the real clock: a post published two hours ago is due at 1 h
    # whatever the second, and the mock's clock is set to the same moment.
    settings = rt.settings.replace(tracking={"mockstagram_url": metrics_mock.url})
    worker_rt = Runtime(settings=settings, db=rt.db, redis=rt.redis, name="test-metrics")
    now = datetime.now(UTC)
    metrics_mock.clock.now = now
    conn = await add_connection(rt.db)
    await seed_published(rt.db, conn, ["w1", "w2"], now - hours(2), metrics_mock)
    await rt.redis.enqueue_job(
        SCAN_FUNCTION,
        _queue_name=redis_keys.queue_key(settings, redis_keys.METRICS),
        _job_id=f"{settings.redis_prefix}:post-metrics:test",
    )
    worker = build_worker(worker_rt, SPECS[redis_keys.METRICS])
    worker.burst = True
    worker.cron_jobs = []  # only the job enqueued above
    await worker.main()
    assert worker.jobs_complete == 1 and worker.jobs_failed == 0
    rows = await metric_rows(rt.db)
    assert [(r.step_s, r.views is not None) for r in rows] == [(3600, True), (3600, True)]


def test_scan_cron_fires_every_configured_minutes(test_settings: Settings) -> None:
    settings = test_settings.replace(post_metrics={"scan_every_min": 15})
    [job] = cron_jobs(settings)
    assert job.minute == {0, 15, 30, 45}
    assert job.unique and job.name.startswith(f"{settings.redis_prefix}:")


async def test_a_post_the_platform_left_out_is_written_empty_and_not_asked_again(
    rt: Runtime, metrics_mock: MetricsMock, http: httpx.AsyncClient
) -> None:
    conn = await add_connection(rt.db)
    await seed_published(rt.db, conn, ["kept"], START, metrics_mock)
    await seed_published(rt.db, conn, ["deleted"], START)  # not on the platform
    reauth = await add_connection(rt.db, "bob", token="tok-bob")
    async with rt.db.transaction() as session:
        await session.execute(
            update(Connection).where(Connection.id == reauth.id).values(status="needs_reauth")
        )
    await seed_published(rt.db, reauth, ["bobs"], START, metrics_mock)
    clock = ManualClock(START + hours(1))
    metrics_mock.clock.now = clock.now
    report = await run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock))
    assert (report.calls, report.written, report.deferred) == (1, 2, {})
    rows = await metric_rows(rt.db)
    assert [(r.views is None, r.likes is None) for r in rows] == [(False, False), (True, True)]
    report = await run_scan(rt.db, rt.redis, rt.settings, http, clock, _urls(metrics_mock))
    assert (report.calls, report.written) == (0, 0)
