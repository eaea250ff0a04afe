"""Fixtures for the post-metrics tests: the mock platform (publishing + metrics routers) on a
loopback port with a hand-moved clock, and published publications seeded straight into Postgres."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from engine.mock_platform.metrics import MetricsState
from engine.mock_platform.metrics import build_router as metrics_router
from engine.mock_platform.publish import MockPost, PublishState
from engine.mock_platform.publish import build_router as publish_router
from storage.database import Database
from storage.models import Connection, Post, PostMetric, PostStatus, Publication
from storage.models import PublicationStatus as PS
from tests.support.clock import ManualClock
from tests.support.publishing import start_server

# A fixed point the tests move from; nothing depends on the real date.
START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class MetricsMock:
    url: str
    posts: PublishState
    metrics: MetricsState
    clock: ManualClock

    def reset(self) -> None:
        self.posts.posts.clear()
        self.posts.by_key.clear()
        self.metrics.script.clear()
        self.metrics.counters.clear()
        self.clock.now = START


@pytest.fixture(scope="session")
async def metrics_mock_server() -> AsyncIterator[MetricsMock]:
    clock = ManualClock(START)
    posts = PublishState()
    metrics = MetricsState(posts, clock=lambda: clock.now.timestamp())
    app = FastAPI()
    app.include_router(publish_router(posts))
    app.include_router(metrics_router(metrics))
    server, task, url = await start_server(app)
    yield MetricsMock(url, posts, metrics, clock)
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def metrics_mock(metrics_mock_server: MetricsMock) -> MetricsMock:
    metrics_mock_server.reset()
    return metrics_mock_server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def seed_published(
    db: Database,
    connection: Connection,
    external_ids: list[str],
    published_at: datetime,
    mock: MetricsMock | None = None,
) -> list[int]:
    """Published posts (one publication each) with these platform ids; also stored in the mock
    platform when given. Returns the publication ids."""
    ids: list[int] = []
    async with db.transaction() as session:
        for external_id in external_ids:
            post = Post(body=f"post {external_id}", status=PostStatus.PUBLISHED)
            session.add(post)
            await session.flush()
            pub = Publication(
                post_id=post.id,
                connection_id=connection.id,
                status=PS.PUBLISHED,
                idempotency_key=uuid.uuid4().hex,
                external_id=external_id,
                published_at=published_at,
            )
            session.add(pub)
            await session.flush()
            ids.append(pub.id)
    if mock is not None:
        for external_id in external_ids:
            mock.posts.posts.append(
                MockPost(
                    external_id, connection.account_id, "x", [], None, published_at.isoformat()
                )
            )
    return ids


async def metric_rows(db: Database) -> list[PostMetric]:
    from sqlalchemy import select

    async with db.session() as session:
        query = select(PostMetric).order_by(PostMetric.publication_id, PostMetric.step_s)
        return list(await session.scalars(query))


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
