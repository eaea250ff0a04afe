"""The engine as a real process: SIGKILL mid-tick, graceful shutdown, dead dependencies, --check."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis

from engine import tick_queue
from storage.database import Database, plain_dsn
from storage.queries import regions
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.engine import add_region, eventually, ledger
from tests.support.process import EngineProcess, free_port, start_redis

pytestmark = pytest.mark.slow


@asynccontextmanager
async def ledger_blocked(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """Hold a lock that makes every tick wait inside its job (its ledger insert blocks)."""
    conn = await asyncpg.connect(plain_dsn(settings.database_url or ""))
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE job_run IN SHARE ROW EXCLUSIVE MODE")
    try:
        yield conn
    finally:
        if not conn.is_closed():
            await tx.rollback()
            await conn.close()


async def due_now(db: Database, code: str = "KILLME") -> datetime:
    """A region with a fire time owed right now (catch-up), so the engine runs it at once."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    # Fires at this minute only (daily), so no later fire time muddies the ledger.
    cron = f"{minute.minute} {minute.hour} * * *"
    await add_region(db, code, cron, schedule_since=minute - timedelta(seconds=30))
    return minute


async def job_in_progress(redis: Redis, settings: Settings, code: str, fire: datetime) -> bool:
    job_id = tick_queue.tick_job_id(settings, code, fire)
    return bool(await redis.exists(in_progress_key_prefix + job_id))


async def test_a_worker_killed_mid_tick_leaves_the_tick_to_complete_exactly_once(
    test_settings: Settings, db: Database, redis: Redis, tmp_path: Path
) -> None:
    fire = await due_now(db)
    async with ledger_blocked(test_settings) as blocker:
        first = EngineProcess(test_settings, tmp_path / "first.log")
        try:
            await eventually(lambda: job_in_progress(redis, test_settings, "KILLME", fire), 20)
            first.signal(signal.SIGKILL)
            assert await first.exit_code(10) == -signal.SIGKILL
        finally:
            first.stop()
        await blocker.close()  # its transaction ends with it
    # arq hands the job out again once the dead worker's in-progress mark expires.
    second = EngineProcess(test_settings, tmp_path / "second.log")
    try:

        async def completed() -> bool:
            return [r["status"] for r in await ledger(db, "KILLME")] == ["ok"]

        await eventually(completed, timeout=test_settings.engine.tick_timeout_s + 25)
        second.signal(signal.SIGTERM)
        assert await second.exit_code(15) == 0
    finally:
        second.stop()
    rows = await ledger(db, "KILLME")
    assert [(r["scheduled_for"], r["status"]) for r in rows] == [(fire, "ok")]
    assert sum(e.get("event") == "tick.ok" for e in second.events()) == 1


async def test_sigterm_lets_the_running_tick_finish_then_exits_zero(
    test_settings: Settings, db: Database, redis: Redis, tmp_path: Path
) -> None:
    fire = await due_now(db, "GRACEFUL")
    engine = EngineProcess(test_settings, tmp_path / "engine.log")
    try:
        async with ledger_blocked(test_settings):
            await eventually(lambda: job_in_progress(redis, test_settings, "GRACEFUL", fire), 20)
            engine.signal(signal.SIGTERM)
            await engine.wait_for("engine.draining", 15)
            assert engine.proc.poll() is None  # still finishing its tick
        started = time.monotonic()
        assert await engine.exit_code(test_settings.engine.shutdown_grace_s + 5) == 0
        took = time.monotonic() - started
    finally:
        engine.stop()
    assert [r["status"] for r in await ledger(db, "GRACEFUL")] == ["ok"]
    assert took < test_settings.engine.shutdown_grace_s
    assert not engine.saw("engine.grace_expired")


async def test_sigterm_past_the_grace_period_cancels_and_requeues(
    test_settings: Settings, db: Database, redis: Redis, tmp_path: Path
) -> None:
    fire = await due_now(db, "SLOWPOKE")
    engine = EngineProcess(test_settings, tmp_path / "engine.log", SHUTDOWN_GRACE_S="1")
    try:
        async with ledger_blocked(test_settings):
            await eventually(lambda: job_in_progress(redis, test_settings, "SLOWPOKE", fire), 20)
            engine.signal(signal.SIGTERM)
            assert await engine.exit_code(10) == 0
            assert engine.saw("engine.grace_expired")
    finally:
        engine.stop()
    job_id = tick_queue.tick_job_id(test_settings, "SLOWPOKE", fire)
    assert await redis.zscore(tick_queue.queue_name(test_settings), job_id) is not None
    assert await ledger(db, "SLOWPOKE") == []


async def test_engine_waits_for_redis_and_resumes_when_it_returns(
    test_settings: Settings, db: Database, tmp_path: Path
) -> None:
    await add_region(db, "PATIENT", "0 3 * * *")
    port = free_port()
    engine = EngineProcess(
        test_settings, tmp_path / "engine.log", REDIS_URL=f"redis://127.0.0.1:{port}/0"
    )
    redis_server: subprocess.Popen[bytes] | None = None
    try:
        # The bound covers starting Python on a loaded machine; the engine itself says so at
        # its first try (no retries hidden inside arq).
        await engine.wait_for("engine.dependency_down", 60)
        assert engine.proc.poll() is None
        redis_server = start_redis(port)
        await engine.wait_for("scheduler.reconciled", 60)
        engine.signal(signal.SIGTERM)
        assert await engine.exit_code(15) == 0
    finally:
        engine.stop()
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait(timeout=10)


async def test_engine_survives_postgres_dropping_its_connections(
    test_settings: Settings, db: Database, redis: Redis, tmp_path: Path
) -> None:
    await add_region(db, "STEADY", "0 3 * * *")
    engine = EngineProcess(test_settings, tmp_path / "engine.log")
    try:
        await engine.wait_for("scheduler.listening", 60)
        # What a Postgres restart looks like from the engine: every connection dropped.
        admin = await asyncpg.connect(plain_dsn(test_settings.database_url or ""))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        await db.engine.dispose()  # this test's own pooled connections died too
        await engine.wait_for("scheduler.listen_failed", 20)
        async with db.transaction() as session:
            await regions.update_region(session, "STEADY", actor="test", cron="15 5 * * *")

        async def rescheduled() -> bool:
            refs = await tick_queue.pending_ticks(redis, test_settings)  # type: ignore[arg-type]
            shard = tick_queue.shard_of(test_settings, "STEADY")
            return [(r.fire.hour, r.fire.minute) for r in refs if r.shard == shard] == [(5, 15)]

        await eventually(rescheduled, timeout=30)
        assert engine.proc.poll() is None
        engine.signal(signal.SIGTERM)
        assert await engine.exit_code(15) == 0
    finally:
        engine.stop()


async def test_check_reports_engine_health_by_exit_code(
    test_settings: Settings, db: Database, tmp_path: Path
) -> None:
    def check() -> int:
        return subprocess.run(
            [sys.executable, "-m", "console.cli", "engine", "--check"],
            env=engine_env(test_settings),
            capture_output=True,
            timeout=30,
        ).returncode

    assert await asyncio.to_thread(check) == 1
    engine = EngineProcess(test_settings, tmp_path / "engine.log")
    try:
        await engine.wait_for("scheduler.reconciled", 60)

        async def healthy() -> bool:
            return await asyncio.to_thread(check) == 0

        await eventually(healthy, timeout=20, every=0.5)
    finally:
        engine.signal(signal.SIGTERM)
        await engine.exit_code(15)
        engine.stop()


async def test_engine_metrics_are_valid_prometheus_exposition(
    test_settings: Settings, db: Database, tmp_path: Path
) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    await due_now(db, "MEASURED")
    port = free_port()
    engine = EngineProcess(test_settings, tmp_path / "engine.log", METRICS_PORT=str(port))
    try:

        async def ticked() -> bool:
            return [r["status"] for r in await ledger(db, "MEASURED")] == ["ok"]

        await eventually(ticked, timeout=20)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        engine.signal(signal.SIGTERM)
        await engine.exit_code(15)
        engine.stop()
    assert response.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples[("creatordeck_ticks_total", (("outcome", "ok"),))] == 1
    assert samples[("creatordeck_tick_lag_seconds_count", ())] == 1
    assert samples[("creatordeck_job_duration_seconds_count", (("function", "tick"),))] >= 1
