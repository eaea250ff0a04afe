"""The embedded servers of a DATA_DIR are shared: the last creatordeck process out stops them,
the others leave them running and say who still uses them; `creatordeck urls` prints them.

Each test uses its own temporary DATA_DIR and stops every server and process it starts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from storage.embedded.servers import EmbeddedServers

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 60


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """No URLs (the demo would start embedded servers in data_dir), no stray demo settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DEMO_API_PORT", "DEMO_MOCK_PORT", "METRICS_PORT")
    }
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        env=env,
        cwd=cwd,  # no developer's .env
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


# A console that joins the embedded Redis of DATA_DIR (Postgres comes from the test run), reports
# ready, and quits when its stdin closes: what `console --serve-ssh` does with the servers.
OTHER_USER = """
import sys
from storage.embedded.environment import resolve
settings = resolve()
print(settings.redis_url, flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short: a unix socket path must fit in ~100 bytes.
    folder = Path(tempfile.mkdtemp(prefix="cdlease-"))
    yield folder
    leftover = EmbeddedServers(folder)
    leftover.redis.stop()
    leftover.postgres.stop()
    shutil.rmtree(folder, ignore_errors=True)


class OtherUser:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        env = cli_env(data_dir, DATABASE_URL=database_url)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OTHER_USER],
            env=env,
            cwd=data_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.redis_url = self.proc.stdout.readline().strip()

    def quit(self) -> str:
        """Its stderr, after it quit."""
        _, err = self.proc.communicate("\n", timeout=TIMEOUT_S)
        return err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=TIMEOUT_S)


def responds(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture
def database_url() -> str:
    return os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:1/unused"


def test_quitting_first_leaves_the_servers_to_the_process_still_using_them(
    data_dir: Path, database_url: str
) -> None:
    """The issue's case: the demo started Redis, a console joined it, the demo quit."""
    demo = EmbeddedServers(data_dir).start(need_postgres=False)
    console = OtherUser(data_dir, database_url)
    try:
        assert console.redis_url == demo.redis_url  # joined, not a second server

        outcome = demo.stop()

        assert responds(demo.redis_url), "Redis was stopped under the console"
        assert outcome is not None and not outcome.stopped
        assert [h.pid for h in outcome.holders] == [console.proc.pid]
        assert "still use them: pid" in outcome.describe(data_dir)
        err = console.quit()  # the last user out stops it, and says so
        assert f"creatordeck: stopped the embedded Postgres and Redis in {data_dir}" in err
        assert not responds(demo.redis_url)
    finally:
        console.kill()
        demo.stop()


def test_the_first_to_quit_of_two_says_who_keeps_the_servers(
    data_dir: Path, database_url: str
) -> None:
    console = OtherUser(data_dir, database_url)  # started Redis
    demo = EmbeddedServers(data_dir).start(need_postgres=False)
    try:
        err = console.quit()
        assert f"left the embedded Postgres and Redis in {data_dir} running" in err
        assert f"pid {os.getpid()}" in err
        assert responds(demo.redis_url)
        outcome = demo.stop()
        assert outcome is not None and outcome.stopped
        assert not responds(demo.redis_url)
    finally:
        console.kill()
        demo.stop()


def test_a_killed_user_does_not_keep_the_servers_forever(data_dir: Path, database_url: str) -> None:
    demo = EmbeddedServers(data_dir).start(need_postgres=False)
    console = OtherUser(data_dir, database_url)
    console.kill()  # SIGKILL: no atexit, its lease file stays behind
    try:
        assert len(list((data_dir / "leases").glob("*.lease"))) == 2
        outcome = demo.stop()
        assert outcome is not None and outcome.stopped
        assert not responds(demo.redis_url)
        assert list((data_dir / "leases").glob("*.lease")) == []
    finally:
        demo.stop()


@pytest.mark.slow
def test_urls_prints_the_running_servers_and_postgres_stops_with_its_last_user(
    data_dir: Path, tmp_path: Path
) -> None:
    # Starting without XDG_RUNTIME_DIR prints no platformdirs warning (pgserver gets a runtime dir).
    first_user = """
import sys, warnings
warnings.simplefilter("default")
from pathlib import Path
from storage.embedded.servers import EmbeddedServers
servers = EmbeddedServers(Path(sys.argv[1])).start()
print("ready", flush=True)
sys.stdin.readline()
print(servers.stop(), flush=True)
"""
    env = cli_env(data_dir)
    env.pop("XDG_RUNTIME_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", first_user, str(data_dir)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"

        printed = run_cli(["urls"], cli_env(data_dir), tmp_path)

        assert printed.returncode == 0, printed.stderr
        urls = dict(line.split("=", 1) for line in printed.stdout.splitlines())
        assert set(urls) == {"DATABASE_URL", "REDIS_URL"}
        # shell-quoted: the host query holds no characters that need quotes in a temp path
        database_url = urls["DATABASE_URL"].strip("'")
        assert responds(urls["REDIS_URL"].strip("'"))

        async def select_one() -> int:
            conn = await asyncpg.connect(database_url)
            try:
                return int(await conn.fetchval("SELECT 1"))
            finally:
                await conn.close()

        assert asyncio.run(select_one()) == 1

        out, err = proc.communicate("\n", timeout=TIMEOUT_S)
        assert "stopped=True" in out
        assert "XDG_RUNTIME_DIR" not in err and "Warning" not in err, err
        after = run_cli(["urls"], cli_env(data_dir), tmp_path)
        assert after.returncode == 1
        assert f"no embedded server is running in {data_dir}" in after.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=TIMEOUT_S)


def test_the_runtime_dir_given_to_pgserver_is_refused_when_others_can_write_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage.embedded import servers as embedded

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    folder = embedded.runtime_dir()
    assert folder.parent == tmp_path and folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)
    with pytest.raises(RuntimeError, match="only this user can write to"):
        embedded.runtime_dir()
