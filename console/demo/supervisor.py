"""`creatordeck demo`: the whole product on one machine, in one command.

Embedded Postgres and Redis (when no URLs are set), migrations, demo data, the background
processes below, then the console in the foreground.

What the demo promises:
- It starts nothing when one of its ports is taken: it names the port, what it is for and how to
  move it (`--api-port`/DEMO_API_PORT, `--mock-port`/DEMO_MOCK_PORT, `--metrics-port`/METRICS_PORT),
  and exits 1.
- A background process that dies is shown in the console's header (and a notification) with
  its exit code and log, not only in its log; quitting then says so and exits 1.
- Quitting stops the background processes; the embedded servers stop only if no other
  creatordeck process still uses them (storage.embedded.leases), and the last line says which it
  was.

Costs: the port check (console.demo.ports) binds and closes one socket per port; the supervisor
polls its three children (a non-blocking waitpid each) every half second while the console runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
from cryptography.fernet import Fernet
from pydantic import SecretStr

import migrations
from console.app import CreatordeckApp
from console.demo.ports import LOOPBACK, DemoPorts, check_ports
from console.demo.seeding import run_seed
from storage.embedded.environment import release, resolve
from storage.embedded.servers import data_dir
from storage.settings import EnvMode, Settings

STOP_TIMEOUT_S = 30
WATCH_S = 1.0
# No alert waits longer than this to fire in the demo (ALERT_FOR_MAX_S): stopping the mock
# platform fires BreakerOpenLong about a minute later, not six.
DEMO_ALERT_FOR_MAX_S = 30


def _step(message: str) -> None:
    click.echo(f"• {message}", err=True)


@dataclass
class Child:
    name: str
    args: tuple[str, ...]  # after `creatordeck`
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def exit_note(self, data_dir: Path | None = None) -> str | None:
        """How it ended, when it has (a non-blocking check). With `data_dir`, the log is shown
        as DATA_DIR/… (short enough for the header's one line at 80 columns)."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            return None
        how = f"code {code}"
        if code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
        log = str(self.log)
        if data_dir is not None and self.log.is_relative_to(data_dir):
            log = f"DATA_DIR/{self.log.relative_to(data_dir)}"
        return f"{self.name} exited ({how}) — see {log}"


@dataclass
class Supervisor:
    """Starts the demo's background processes, watches them, and stops them."""

    children: list[Child]
    env: dict[str, str] = field(default_factory=dict)
    stopping: bool = False

    @classmethod
    def for_demo(cls, settings: Settings, ports: DemoPorts, logs: Path) -> Supervisor:
        # Each logs to DATA_DIR/logs/NAME.log.
        children = [
            Child("engine", ("engine",), logs / "engine.log"),
            # One api process: the demo's load is one person's clicks.
            Child(
                "api",
                ("api", "--host", LOOPBACK, "--port", str(ports.api), "--workers", "1"),
                logs / "api.log",
            ),
            Child(
                "mockstagram",
                ("mockstagram", "--host", LOOPBACK, "--port", str(ports.mock)),
                logs / "mockstagram.log",
            ),
        ]
        return cls(children, child_env(settings, ports))

    def start(self) -> None:
        for child in self.children:
            child.log.parent.mkdir(parents=True, exist_ok=True)
            _step(f"starting {child.name} (log: {child.log})")
            with child.log.open("ab") as log_file:
                child.process = subprocess.Popen(
                    [sys.executable, "-m", "console.cli", *child.args],
                    env=self.env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )

    def problems(self, data_dir: Path | None = None) -> list[str]:
        """The children that ended on their own (see Child.exit_note)."""
        if self.stopping:
            return []
        return [note for child in self.children if (note := child.exit_note(data_dir))]

    def stop(self) -> None:
        self.stopping = True
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class DemoApp(CreatordeckApp):
    """The console, plus what the demo's supervisor sees (status_header.ReportsBackground).

    CSS_PATH is absolute (console/app.py), so this subclass finds the same stylesheet."""

    def __init__(self, settings: Settings, supervisor: Supervisor) -> None:
        super().__init__(settings)
        self.supervisor = supervisor
        self.data_dir = data_dir(settings.data_dir)
        self._told: set[str] = set()

    def background_problems(self) -> list[str]:
        """For the header: short (the log as DATA_DIR/…); the notification has the full path."""
        return self.supervisor.problems(self.data_dir)

    def on_mount(self) -> None:  # Textual also runs CreatordeckApp.on_mount
        self.set_interval(WATCH_S, self._tell_new_problems)

    def _tell_new_problems(self) -> None:
        for problem in self.supervisor.problems():
            if problem not in self._told:
                self._told.add(problem)
                self.notify(problem, title="background process", severity="error", timeout=30)


def child_env(settings: Settings, ports: DemoPorts) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url or ""
    env["REDIS_URL"] = settings.redis_url or ""
    env["REDIS_PREFIX"] = settings.redis_prefix
    env["METRICS_PORT"] = str(ports.metrics)
    # The engine fetches from and publishes to the demo's own mock platform, wherever it listens.
    env["MOCKSTAGRAM_URL"] = f"http://{LOOPBACK}:{ports.mock}"
    # Connections > c > mock: the mock's device code approves itself after two polls (oauth).
    env.setdefault("MOCKSTAGRAM_OAUTH_AUTO_APPROVE", "2")
    env.setdefault("MOCKSTAGRAM_OAUTH_INTERVAL_S", "2")
    # Post metrics in minutes, not hours: the demo's published posts show numbers arriving.
    env.setdefault("POST_METRICS_STEPS_S", "[60, 180, 600, 1800]")
    env.setdefault("POST_METRICS_SCAN_EVERY_MIN", "1")
    if settings.encryption_key is not None:
        env["ENCRYPTION_KEY"] = settings.encryption_key.get_secret_value()
    if settings.alerts.for_max_s is not None:
        env["ALERT_FOR_MAX_S"] = str(settings.alerts.for_max_s)
    return env


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
    if settings.alerts.for_max_s is not None:
        return settings
    return settings.replace(alerts={"for_max_s": DEMO_ALERT_FOR_MAX_S})


def run_demo(settings: Settings, ports: DemoPorts) -> int:
    """0 after a clean quit; 1 when a background process had died. Raises DemoError (nothing
    started) when a port is taken."""
    check_ports(ports)
    _step("starting Postgres and Redis (embedded when DATABASE_URL / REDIS_URL are unset)")
    settings = resolve(settings)
    died: list[str] = []
    try:
        folder = data_dir(settings.data_dir)
        settings = demo_alert_timing(demo_encryption_key(settings, folder))
        _step("migrating the database")
        migrations.upgrade(settings.database_url or "")
        _step("seeding demo data")
        asyncio.run(run_seed(settings, demo=True))
        supervisor = Supervisor.for_demo(settings, ports, folder / "logs")
        os.environ["MOCKSTAGRAM_URL"] = f"http://{LOOPBACK}:{ports.mock}"  # the console's OAuth
        try:
            supervisor.start()
            DemoApp(settings, supervisor).run()
        finally:
            died = supervisor.problems()
            _step("stopping background processes")
            supervisor.stop()
    finally:
        message = release()
        if message:
            _step(message)
    for line in died:
        _step(line)
    if not died:
        _step("stopped")
    return 1 if died else 0
