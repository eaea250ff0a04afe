"""An OpenAPI-driven fuzz of the running api (schemathesis): no input makes it answer 500."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from storage.database import Database
from storage.settings import Settings
from tests.conftest import engine_env
from tests.test_experiments_helpers import TOKEN, make_experiment

ROOT = Path(__file__).resolve().parents[1]
STARTUP_DEADLINE_S = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def api_base(test_settings: Settings) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "api", "--port", str(port)],
        env=engine_env(test_settings, DASHBOARD_TOKEN=TOKEN, LOG_LEVEL="WARNING"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    try:
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"api did not start: {detail!r}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def fuzz_experiment(db: Database, api_base: str) -> None:
    await make_experiment(db, "fuzz")


@pytest.fixture
def api_schema(api_base: str, fuzz_experiment: None) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_base}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors(case: schemathesis.Case, api_base: str) -> None:
    response = case.call(base_url=api_base, headers={"x-dashboard-token": TOKEN}, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:500]}"
