"""A fetch job whose engine is SIGKILLed mid-batch is re-run by another engine: no duplicate."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from engine import fetch_queue, queues
from engine.jobs.fetch import run_fetch
from engine.platforms.caller import PlatformCaller
from engine.resilience import RetryPolicy
from engine.runtime import Runtime
from storage.database import Database
from storage.models import FollowerSample
from storage.queries import creators
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.creators import add_creators, add_region, tracking
from tests.support.process import EngineProcess


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def real_mock(settings: Settings, tmp_path: Path, *flags: str) -> Iterator[str]:
    """`creatordeck mockstagram` on a free loopback port; yields its URL; stopped after."""
    port = _free_port()
    log = (tmp_path / f"mock-{port}.log").open("wb")
    args = ["mockstagram", "--port", str(port), *flags]
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", *args],
        env=engine_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the mock platform did not start"
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def slow_mock(test_settings: Settings, tmp_path: Path) -> Iterator[str]:
    with real_mock(test_settings, tmp_path, "--latency-ms", "2000") as url:
        yield url


async def _samples(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(FollowerSample)) or 0)


@pytest.mark.slow
async def test_sigkill_mid_batch_then_rerun_writes_each_sample_once(
    test_settings: Settings, db: Database, slow_mock: str, tmp_path: Path
) -> None:
    await add_region(db)
    ids = await add_creators(db, 800)
    slot = creators.slot_start(datetime.now(UTC), 60)
    pool = await queues.connect(test_settings)
    try:
        job = fetch_queue.FetchRequest(
            job_id=fetch_queue.fetch_job_id(test_settings, 0, 1),
            run_id=0,
            batch_no=1,
            platform="mock",
            slot_ts=int(slot.timestamp()),
            creator_ids=ids,
        )
        assert await fetch_queue.enqueue_fetches(pool, test_settings, [job]) == 1
        env = {"MOCKSTAGRAM_URL": slow_mock, "FETCH_MAX_TRIES": "5"}
        first = EngineProcess(test_settings, tmp_path / "first.log", "--role", "worker", **env)
        try:
            async with httpx.AsyncClient(base_url=slow_mock) as client:
                deadline = asyncio.get_running_loop().time() + 20
                while (await client.get("/admin/stats")).json().get("requests", 0) < 1:
                    assert asyncio.get_running_loop().time() < deadline, "the job never ran"
                    await asyncio.sleep(0.05)
                # The platform is answering (2 s latency): kill the worker mid-batch.
                first.signal(signal.SIGKILL)
                await first.exit_code(10)
                assert await _samples(db) == 0
                await client.put("/admin/faults", json={"latency_ms": 0})
        finally:
            first.stop()
        # arq hands the job to another worker once the dead one's in-progress lease expires.
        second = EngineProcess(test_settings, tmp_path / "second.log", "--role", "worker", **env)
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while await _samples(db) < len(ids):
                assert asyncio.get_running_loop().time() < deadline, "the re-run never finished"
                await asyncio.sleep(0.2)
        finally:
            second.stop()
    finally:
        await pool.aclose()
    async with db.session() as session:
        dupes = await session.execute(
            select(FollowerSample.creator_id)
            .group_by(FollowerSample.creator_id, FollowerSample.observed_at)
            .having(func.count() > 1)
        )
        assert dupes.all() == []
    assert await _samples(db) == len(ids)


async def test_platform_timeouts_are_retried_then_deferred(
    test_settings: Settings, db: Database, redis: Redis, tmp_path: Path
) -> None:
    """A platform that hangs: the client times out (outcome unknown), a read retries, then
    the creators are deferred to a later try, not failed."""
    await add_region(db)
    ids = await add_creators(db, 4)
    pool = await queues.connect(test_settings)
    rt = Runtime(settings=test_settings, db=db, redis=pool)
    retry = RetryPolicy(attempts=2, initial_s=0.01, max_backoff_s=0.02, retry_outcome_unknown=True)
    slot = int(creators.slot_start(datetime.now(UTC), 60).timestamp())
    try:
        with real_mock(test_settings, tmp_path, "--timeout-rate", "1", "--hang-s", "4") as url:
            ts = tracking(mockstagram_url=url, fetch_timeout_s=0.3)
            caller = PlatformCaller(pool, test_settings, ts, retry_policy=retry)
            try:
                started = time.monotonic()
                report = await run_fetch(rt, caller, 0, 0, "mock", slot, ids, final=False)
                elapsed = time.monotonic() - started
            finally:
                await caller.close()
    finally:
        await pool.aclose()
    # The client gave up twice after 0.3 s; waiting for even one 4 s hang would take longer than
    # this bound, which leaves a busy machine seconds of slack.
    assert elapsed < 4.0
    assert report.counts["api_calls"] == 2 and report.counts["retried_later"] == 4
    assert report.retry_in_s is not None and report.counts["failed"] == 0
    async with db.session() as session:
        owed = await creators.load_for_fetch(session, ids, datetime.fromtimestamp(slot, UTC))
    assert len(owed) == 4  # still owed: a later try fetches them
