"""The demo's ports: where they come from, and the check that runs before anything starts.

Kept apart from console.demo.supervisor (which imports the whole console) so a taken port is
reported at once. The check binds each address the way its server will and closes it again; a port
taken between the check and the server's start is still caught, later, by the demo's supervisor.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

import click

from storage.settings import Settings

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - where the engine serves /metrics (engine.metrics)


class DemoError(click.ClickException):
    """The demo cannot start; nothing was started."""


@dataclass(frozen=True)
class DemoPort:
    name: str  # what listens there
    host: str  # where it binds (the check binds the same address)
    port: int  # 0: off, nothing to check
    how_to_move: str


@dataclass(frozen=True)
class DemoPorts:
    api: int
    mock: int
    metrics: int  # 0: the engine serves no /metrics

    @classmethod
    def of(
        cls, settings: Settings, api: int | None, mock: int | None, metrics: int | None
    ) -> DemoPorts:
        """Flags first, then the settings (DEMO_API_PORT, DEMO_MOCK_PORT, METRICS_PORT)."""
        return cls(
            api=settings.demo.api_port if api is None else api,
            mock=settings.demo.mock_port if mock is None else mock,
            metrics=settings.engine.metrics_port if metrics is None else metrics,
        )

    def listed(self) -> list[DemoPort]:
        return [
            DemoPort("api", LOOPBACK, self.api, "--api-port N (or DEMO_API_PORT=N)"),
            DemoPort("mock platform", LOOPBACK, self.mock, "--mock-port N (or DEMO_MOCK_PORT=N)"),
            DemoPort(
                "engine metrics",
                ALL_INTERFACES,
                self.metrics,
                "--metrics-port N (or METRICS_PORT=N; 0 turns it off)",
            ),
        ]


def _bind_error(host: str, port: int) -> str | None:
    """Why a server could not listen on host:port now, or None when it could."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn and http.server do: a port left in TIME_WAIT is free to them, so to us.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "already in use"
            return exc.strerror or str(exc)
    return None


def port_problems(ports: DemoPorts) -> list[str]:
    """One line per port the demo cannot use; empty when it can use them all."""
    problems = []
    used: dict[int, str] = {}
    for entry in ports.listed():
        if entry.port == 0:
            continue
        if entry.port in used:
            problems.append(
                f"port {entry.port} is given to both the {used[entry.port]} and the "
                f"{entry.name}: move the {entry.name} with {entry.how_to_move}"
            )
            continue
        used[entry.port] = entry.name
        error = _bind_error(entry.host, entry.port)
        if error:
            problems.append(
                f"port {entry.port} ({entry.name}, {entry.host}) is {error}: "
                f"free it, or move the {entry.name} with {entry.how_to_move}"
            )
    return problems


def check_ports(ports: DemoPorts) -> None:
    """Raise DemoError naming every port the demo cannot use."""
    problems = port_problems(ports)
    if problems:
        raise DemoError("the demo cannot start (nothing was started):\n  " + "\n  ".join(problems))
