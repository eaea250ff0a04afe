"""Running `creatordeck` as a real subprocess and reading its JSON logs."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from storage.embedded.servers import redis_server_binary
from storage.settings import Settings
from tests.conftest import engine_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """A throwaway redis-server on loopback that keeps nothing on disk; the caller stops it."""
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return subprocess.Popen([redis_server_binary(), *args], stdout=subprocess.DEVNULL)


class EngineProcess:
    def __init__(self, settings: Settings, log_path: Path, *args: str, **env: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "engine", *args],
            env=engine_env(settings, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def saw(self, event: str) -> bool:
        return any(e.get("event") == event for e in self.events())

    async def wait_for(self, event: str, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.saw(event):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"engine exited ({self.proc.returncode}) before {event}:\n"
                    + self.log_path.read_text()[-3000:]
                )
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"no {event} within {timeout}s:\n" + self.log_path.read_text()[-3000:]
                )
            await asyncio.sleep(0.05)

    async def exit_code(self, timeout: float) -> int:
        deadline = asyncio.get_running_loop().time() + timeout
        while self.proc.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"engine still running after {timeout}s")
            await asyncio.sleep(0.05)
        self._log.close()
        return self.proc.returncode

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
