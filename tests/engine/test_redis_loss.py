"""The engine keeps running while Redis is gone, and picks up again when it returns."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from storage.database import Database
from storage.settings import Settings
from tests.support.engine import add_region
from tests.support.process import EngineProcess, free_port, start_redis


async def test_engine_outlives_redis_going_away_and_resumes(
    test_settings: Settings, db: Database, tmp_path: Path
) -> None:
    await add_region(db, "PATIENT", "0 3 * * *")
    port = free_port()
    server: subprocess.Popen[bytes] | None = start_redis(port)
    engine = EngineProcess(
        test_settings, tmp_path / "engine.log", REDIS_URL=f"redis://127.0.0.1:{port}/0"
    )
    try:
        await engine.wait_for("scheduler.reconciled", 60)
        assert server is not None
        server.terminate()
        server.wait(timeout=10)
        server = None
        await engine.wait_for("scheduler.reconcile_failed", 20)
        # The scheduler's sentinel check, the workers and the heartbeat all meet the dead
        # Redis within a few seconds; none of them may take the process down.
        await asyncio.sleep(4)
        assert engine.proc.poll() is None, engine.events()[-5:]
        reconciled = sum(e.get("event") == "scheduler.reconciled" for e in engine.events())
        server = start_redis(port)

        async def resumed() -> bool:
            events = engine.events()
            return sum(e.get("event") == "scheduler.reconciled" for e in events) > reconciled

        deadline = asyncio.get_running_loop().time() + 60
        while not await resumed():
            assert asyncio.get_running_loop().time() < deadline, (
                "no reconcile after Redis came back"
            )
            assert engine.proc.poll() is None, engine.events()[-5:]
            await asyncio.sleep(0.2)
    finally:
        engine.stop()
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
