"""`creatordeck demo`: the whole product on one machine, in one command.

Embedded Postgres and Redis (when no URLs are set), migrations, demo data, the background
processes below, then the console in the foreground. Quitting the console stops everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography.fernet import Fernet
from pydantic import SecretStr

import migrations
from console.environment import resolve
from console.seeding import run_seed
from storage.embedded import data_dir
from storage.settings import EnvMode, Settings

STOP_TIMEOUT_S = 30
# No alert waits longer than this to fire in the demo (ALERT_FOR_MAX_S): stopping the mock
# platform fires BreakerOpenLong about a minute later, not six.
DEMO_ALERT_FOR_MAX_S = 30


@dataclass(frozen=True)
class Background:
    name: str
    args: tuple[str, ...]  # after `creatordeck`


# The processes the demo runs behind the console (each logs to DATA_DIR/logs/NAME.log).
BACKGROUND: list[Background] = [
    Background("engine", ("engine",)),
    Background("api", ("api", "--host", "127.0.0.1", "--port", "8000")),
    Background("mockstagram", ("mockstagram", "--host", "127.0.0.1", "--port", "8765")),
]


def _step(message: str) -> None:
    click.echo(f"• {message}", err=True)


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url or ""
    env["REDIS_URL"] = settings.redis_url or ""
    env["REDIS_PREFIX"] = settings.redis_prefix
    if settings.encryption_key is not None:
        env["ENCRYPTION_KEY"] = settings.encryption_key.get_secret_value()
    if settings.alert_for_max_s is not None:
        env["ALERT_FOR_MAX_S"] = str(settings.alert_for_max_s)
    return env


def start_background(settings: Settings, logs_dir: Path) -> list[subprocess.Popen[bytes]]:
    logs_dir.mkdir(parents=True, exist_ok=True)
    children = []
    for proc in BACKGROUND:
        _step(f"starting {proc.name} (log: {logs_dir / (proc.name + '.log')})")
        log_file = (logs_dir / f"{proc.name}.log").open("ab")
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "console.cli", *proc.args],
                env=_child_env(settings),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    return children


def stop_background(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()


def demo_encryption_key(settings: Settings, folder: Path) -> Settings:
    """ENCRYPTION_KEY from the environment, else a local key kept beside the demo's data.

    Only the demo does this (never `ENV=prod`): it lets the demo publish out of the box.
    """
    if settings.encryption_key is not None or settings.env == EnvMode.PROD:
        return settings
    path = folder / "demo-encryption.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(Fernet.generate_key().decode())
    key = path.read_text().strip()
    os.environ["ENCRYPTION_KEY"] = key
    return settings.model_copy(update={"encryption_key": SecretStr(key)})


def demo_alert_timing(settings: Settings) -> Settings:
    """ALERT_FOR_MAX_S from the environment, else the demo's short cap (console and engine)."""
    if settings.alert_for_max_s is not None:
        return settings
    return settings.model_copy(update={"alert_for_max_s": DEMO_ALERT_FOR_MAX_S})


def run_demo() -> int:
    _step("starting Postgres and Redis (embedded when DATABASE_URL / REDIS_URL are unset)")
    settings = resolve()
    folder = data_dir(settings.data_dir)
    settings = demo_alert_timing(demo_encryption_key(settings, folder))
    _step("migrating the database")
    migrations.upgrade(settings.database_url or "")
    _step("seeding demo data")
    asyncio.run(run_seed(settings, demo=True))
    children = start_background(settings, folder / "logs")
    try:
        from console.app import CreatordeckApp

        CreatordeckApp(settings).run()
    finally:
        _step("stopping background processes")
        stop_background(children)
    _step("stopped")
    return 0
