"""The engine's /metrics listens on loopback unless METRICS_HOST opens it (no network needed:
127.0.0.2 is loopback too, and shows the setting is honoured)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from engine import runner
from storage.settings import Settings


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def started() -> Iterator[list[runner.WSGIServer]]:
    servers: list[runner.WSGIServer] = []
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


def test_metrics_listen_on_loopback_by_default(
    monkeypatch: pytest.MonkeyPatch, started: list[runner.WSGIServer]
) -> None:
    monkeypatch.delenv("METRICS_HOST", raising=False)
    settings = Settings(_env_file=None, engine={"metrics_port": free_port("127.0.0.1")})  # type: ignore[call-arg]
    server = runner._serve_metrics(settings)
    assert server is not None
    started.append(server)
    assert server.server_address[0] == "127.0.0.1"
    response = httpx.get(f"http://127.0.0.1:{settings.engine.metrics_port}/metrics", timeout=5)
    assert response.status_code == 200 and "creatordeck_ticks" in response.text


def test_metrics_host_is_honoured(
    monkeypatch: pytest.MonkeyPatch, started: list[runner.WSGIServer]
) -> None:
    monkeypatch.setenv("METRICS_HOST", "127.0.0.2")
    monkeypatch.setenv("METRICS_PORT", str(free_port("127.0.0.2")))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    server = runner._serve_metrics(settings)
    assert server is not None
    started.append(server)
    assert server.server_address[0] == "127.0.0.2"
    response = httpx.get(f"http://127.0.0.2:{settings.engine.metrics_port}/metrics", timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("value", ["0.0.0.0:9108", "http://0.0.0.0", "", "two words"])
def test_a_metrics_host_that_is_no_address_is_refused_with_the_reason(value: str) -> None:
    with pytest.raises(ValidationError, match=r"METRICS_HOST .* is not an IP address or host name"):
        Settings(_env_file=None, engine={"metrics_host": value})  # type: ignore[call-arg]
