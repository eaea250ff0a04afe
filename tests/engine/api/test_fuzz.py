"""An OpenAPI-driven fuzz of the running api (schemathesis) with every check the CLI's
`--checks all` runs: no 500, every answer documented and conforming to its schema, schema-valid
requests accepted, invalid ones refused with a 4xx. Two hooks state what JSON Schema cannot:
the event time window (`before_call`) and per-event refusal in a batch (`filter_failure`).

The same run from the command line, against an api started by hand (see the README's api
section): `SCHEMATHESIS_HOOKS=tests.engine.api.test_fuzz schemathesis run --checks all ...`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import AcceptedNegativeData, Failure

from storage.database import Database
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.experiments import TOKEN, make_experiment

ROOT = Path(__file__).resolve().parents[3]
STARTUP_DEADLINE_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """Move the times of a schema-valid event batch into the accepted window as it is sent.

    The OpenAPI document states the window (30 days back, 300 s ahead of the server's clock,
    after skew correction), but JSON Schema cannot express "relative to now": unmoved, a
    schema-valid batch stamped in the year 2000 is rightly refused (422) and would count as
    valid data rejected. Invalid (negative) cases are sent as generated.
    """
    meta = case.meta
    if case.operation.path != "/v1/events" or meta is None:
        return
    if not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    now = datetime.now(UTC).isoformat()
    if case.body.get("sent_at") is not None:
        case.body["sent_at"] = now
    for item in case.body.get("events") or []:
        if isinstance(item, dict) and "timestamp" in item:
            item["timestamp"] = now


def _valid_as(case: schemathesis.Case, component: str, value: Any) -> bool:
    """`value` against a component of the document the case came from (formats checked)."""
    document = {"$ref": f"#/components/schemas/{component}", **case.operation.schema.raw_schema}
    return bool(jsonschema_rs.Draft202012Validator(document, validate_formats=True).is_valid(value))


@schemathesis.hook
def filter_failure(
    context: Any, failure: Failure, case: schemathesis.Case, response: schemathesis.Response
) -> bool:
    """Keep every failure but one: an event batch accepted in part, as documented.

    POST /v1/events refuses invalid events one by one and stores the valid ones (200), so a
    batch that violates the schema only through some of its events is accepted in part, which
    the all-or-nothing negative check reports as invalid data accepted. That report is dropped
    only when the rest of the batch is valid and every event the document calls invalid is
    listed under `refused`; anything else the api accepted is still a failure.
    """
    if not isinstance(failure, AcceptedNegativeData) or case.operation.path != "/v1/events":
        return True
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return True
    events = body["events"]
    invalid = {i for i, item in enumerate(events) if not _valid_as(case, "EventIn", item)}
    rest = {**body, "events": [item for i, item in enumerate(events) if i not in invalid]}
    refused = {r.get("index") for r in response.json().get("refused", [])}
    return not (invalid and invalid <= refused and _valid_as(case, "EventBatch", rest))


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
                # A slow start is still running: stop it first, or reading its stderr to the
                # end would wait for ever (seen under load average 9).
                proc.kill()
                detail = proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"api did not start within {STARTUP_DEADLINE_S} s: {detail!r}")
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
    loaded = schemathesis.openapi.from_url(f"{api_base}/openapi.json")
    # As the CLI's -H: a fixed header, never generated (nor left out) by a negative case.
    loaded.config.update(headers={"x-dashboard-token": TOKEN})
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_check_passes(case: schemathesis.Case, api_base: str) -> None:
    # With no `checks=`, every built-in check is enabled: what `--checks all` runs.
    case.call_and_validate(base_url=api_base, timeout=10)
