"""Fixtures for the publishing tests: the mock platform on a loopback port, a runtime with an
encryption key, connections and posts. (Imported by the test_publish_* modules.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr

from engine import publish_queue, queues
from engine.jobs.publish import PublishContext, PublishPolicy, run_publication
from engine.jobs.publish_batch import run_batch
from engine.mock_platform.fast_posts import FastPosts
from engine.mock_platform.publish import FaultConfig, PublishState, build_router
from engine.runtime import Runtime
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import Connection, Platform, Post, Publication
from storage.queries import publishing
from storage.settings import Settings

KEY = Fernet.generate_key().decode()
FAST = PublishPolicy(
    max_attempts=4,
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    timeout_s=3.0,
    request_timeout_s=0.5,
    config_retry_s=0.5,
)


@dataclass
class MockPlatform:
    url: str
    state: PublishState

    def configure(self, **config: Any) -> None:
        self.state.config = FaultConfig(**config)

    def reset(self) -> None:
        self.state.config = FaultConfig()
        self.state.posts.clear()
        self.state.by_key.clear()
        self.state.requests = self.state.replayed = 0
        self.state.faults.clear()


async def start_server(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("mock platform did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
async def mock_platform() -> AsyncIterator[MockPlatform]:
    state = PublishState()
    app = FastAPI()
    app.include_router(build_router(state))
    app.add_middleware(FastPosts, state=state)  # as the mock server answers posts
    server, task, url = await start_server(app)
    yield MockPlatform(url, state)
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def platform(mock_platform: MockPlatform) -> MockPlatform:
    mock_platform.reset()
    return mock_platform


@pytest.fixture(scope="session")
def pub_settings(test_settings: Settings) -> Settings:
    return test_settings.model_copy(update={"encryption_key": SecretStr(KEY)})


@pytest.fixture
async def rt(pub_settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    redis = await queues.connect(pub_settings)
    yield Runtime(settings=pub_settings, db=db, redis=redis, name="test-worker")
    await redis.aclose()


@pytest.fixture
async def pc(rt: Runtime, platform: MockPlatform) -> AsyncIterator[PublishContext]:
    context = PublishContext(rt, policy=FAST, base_urls={Platform.MOCK: platform.url})
    yield context
    await context.close()


@pytest.fixture
async def respx_pc(rt: Runtime, platform: MockPlatform) -> AsyncIterator[PublishContext]:
    """`pc` on httpx's own transport: respx replays recorded responses by patching httpcore,
    which the engine's aiohttp transport does not use (tests/engine/publishers/test_transport.py
    tests that transport on a real socket)."""
    context = PublishContext(
        rt, policy=FAST, base_urls={Platform.MOCK: platform.url}, client=httpx.AsyncClient()
    )
    yield context
    await context.close()


async def add_connection(
    db: Database,
    account: str = "alice",
    token: str = "tok-alice",
    platform: Platform = Platform.MOCK,
    **extra: Any,
) -> Connection:
    async with db.transaction() as session:
        return await publishing.save_connection(
            session,
            TokenCipher(KEY),
            publishing.ConnectionInput(
                platform=platform,
                account_id=account,
                display_name=f"@{account}",
                token=token,
                **extra,
            ),
            actor="test",
        )


async def add_post(
    rt: Runtime,
    connection_ids: list[int],
    when: datetime | None = None,
    body: str = "hello world",
    media: list[str] | None = None,
) -> tuple[Post, publishing.JobChange]:
    when = when or datetime.now(UTC)
    async with rt.db.transaction() as session:
        post, change = await publishing.create_post(
            session,
            publishing.PostInput(
                body=body, media=media or [], connection_ids=connection_ids, scheduled_at=when
            ),
            actor="test",
        )
    await publish_queue.apply(rt.redis, rt.settings, change)
    return post, change


async def publications(db: Database, post_id: int | None = None) -> list[Publication]:
    from sqlalchemy import select

    async with db.session() as session:
        query = select(Publication).order_by(Publication.id)
        if post_id is not None:
            query = query.where(Publication.post_id == post_id)
        return list(await session.scalars(query))


async def post_status(db: Database, post_id: int) -> str:
    async with db.session() as session:
        post = await session.get(Post, post_id)
        assert post is not None
        return post.status


async def drain(pc: PublishContext, deadline_s: float = 15.0) -> list[str]:
    """Run due publish jobs in this process (as a worker would) until none is due or pending."""
    results: list[str] = []
    end = asyncio.get_running_loop().time() + deadline_s
    while True:
        due = await due_jobs(pc.rt)
        batches = await due_batches(pc.rt)
        if not due and not batches:
            queued = await publish_queue.queued_pairs(pc.rt.redis, pc.rt.settings)
            if not queued:
                return results
        for pub, gen in due:
            await publish_queue.remove_publish_jobs(pc.rt.redis, pc.rt.settings, [(pub, gen)])
            results.append(await run_publication(pc, pub, gen))
        for job_id, pairs in batches.items():
            await publish_queue.remove_batch_jobs(pc.rt.redis, pc.rt.settings, [job_id])
            results.extend(await run_batch(pc, pairs))
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"publish queue not drained in {deadline_s}s: {results}")
        if not due:
            await asyncio.sleep(0.02)


async def run_queued(pc: PublishContext) -> list[str]:
    """Take every queued publish job (due or not) and run it once, as a worker would."""
    jobs = await publish_queue.queued_jobs(pc.rt.redis, pc.rt.settings)
    await publish_queue.remove_publish_jobs(pc.rt.redis, pc.rt.settings, jobs)
    return [await run_publication(pc, pub, gen) for pub, gen in sorted(jobs)]


async def due_batches(rt: Runtime) -> dict[str, list[tuple[int, int]]]:
    """The batch jobs that are due, by job id, with their pairs."""
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    raw = await rt.redis.zrangebyscore(publish_queue.queue_name(rt.settings), "-inf", now_ms)
    due = {r.decode() for r in raw}
    batches = await publish_queue.queued_batches(rt.redis, rt.settings)
    return {job_id: pairs for job_id, pairs in batches.items() if job_id in due}


async def due_jobs(rt: Runtime) -> list[tuple[int, int]]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    raw = await rt.redis.zrangebyscore(publish_queue.queue_name(rt.settings), "-inf", now_ms)
    refs = [publish_queue.parse_publish_job_id(rt.settings, r.decode()) for r in raw]
    return [ref for ref in refs if ref is not None]


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.05)


def soon(seconds: float = 0.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
