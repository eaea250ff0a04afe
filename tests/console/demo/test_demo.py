"""`creatordeck demo`: it checks its ports before starting anything, its ports move, and a
background process that dies is shown in the console and reported on quit.

Every process a test starts is stopped by that test; ports are free ones picked by the kernel.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from console.widgets.status_header import StatusHeader
from storage.settings import Settings
from tests.conftest import engine_env
from tests.console.test_app import SIZE, wait_until
from tests.storage.embedded.test_embedded import TIMEOUT_S, cli_env, run_cli

PROCESS_START_S = 60.0  # a child process to start and report (slow only on a loaded machine)

if TYPE_CHECKING:
    from console.demo.supervisor import DemoApp, Supervisor


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else listens on (on all interfaces, as the engine's /metrics would)."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize(
    ("taken", "named", "how"),
    [
        ("--api-port", "api", "--api-port N (or DEMO_API_PORT=N)"),
        ("DEMO_MOCK_PORT", "mock platform", "--mock-port N (or DEMO_MOCK_PORT=N)"),
        ("METRICS_PORT", "engine metrics", "--metrics-port N (or METRICS_PORT=N; 0 turns it off)"),
    ],
)
def test_a_taken_port_is_named_and_nothing_is_started(
    tmp_path: Path, held_port: int, taken: str, named: str, how: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    ports = {"--api-port": free_port(), "--mock-port": free_port(), "--metrics-port": free_port()}
    env = cli_env(data_dir)
    if taken.startswith("--"):
        ports[taken] = held_port
    else:  # the settings tree's variable, with its flag left out
        env[taken] = str(held_port)
        ports.pop("--mock-port" if taken == "DEMO_MOCK_PORT" else "--metrics-port")
    args = ["demo", *(str(part) for item in ports.items() for part in item)]

    done = run_cli(args, env, tmp_path)

    assert done.returncode == 1, done.stderr
    assert f"port {held_port} ({named}" in done.stderr
    assert "already in use" in done.stderr and how in done.stderr
    assert "nothing was started" in done.stderr
    assert list(data_dir.iterdir()) == []  # no embedded server, no log, no lease


def test_two_roles_on_one_port_are_refused(tmp_path: Path) -> None:
    port = free_port()
    args = ["demo", "--api-port", str(port), "--mock-port", str(port), "--metrics-port", "0"]
    done = run_cli(args, cli_env(tmp_path / "data"), tmp_path)
    assert done.returncode == 1
    assert f"port {port} is given to both the api and the mock platform" in done.stderr


def test_ports_come_from_flags_then_settings() -> None:
    from console.demo import supervisor as demo
    from console.demo.ports import DemoPorts

    settings = Settings(
        demo={"api_port": 9001, "mock_port": 9002}, engine={"metrics_port": 0}, _env_file=None
    )  # type: ignore[call-arg]
    assert DemoPorts.of(settings, None, None, None) == DemoPorts(9001, 9002, 0)
    assert DemoPorts.of(settings, 7001, 7002, 7003) == DemoPorts(7001, 7002, 7003)
    env = demo.child_env(settings, DemoPorts(7001, 7002, 7003))
    assert env["METRICS_PORT"] == "7003"
    assert env["MOCKSTAGRAM_URL"] == "http://127.0.0.1:7002"
    # Post metrics arrive within the demo: the engine reads them at minutes, not hours.
    demo_metrics = Settings(
        post_metrics={"steps_s": json.loads(env["POST_METRICS_STEPS_S"])}, _env_file=None
    ).post_metrics  # type: ignore[call-arg]
    assert demo_metrics.steps_s[0] <= 60


def _header(app: Any) -> str:
    return str(app.screen.query_one(StatusHeader).render().plain)


def _dying_api(settings: Settings, logs: Path, port: int) -> Supervisor:
    """The issue's case: the api cannot bind its port and exits at start."""
    from console.demo.supervisor import Child, Supervisor

    api = Child("api", ("api", "--host", "127.0.0.1", "--port", str(port)), logs / "api.log")
    return Supervisor([api], engine_env(settings))


async def test_a_background_process_that_dies_is_shown_in_the_console(
    test_settings: Settings, tmp_path: Path, held_port: int
) -> None:
    from console.demo.supervisor import DemoApp

    settings = test_settings.model_copy(update={"data_dir": str(tmp_path)})
    supervisor = _dying_api(settings, tmp_path / "logs", held_port)
    supervisor.start()
    try:
        app = DemoApp(settings, supervisor)
        async with app.run_test(size=SIZE) as pilot:
            # The api is a real process: Python starting on a loaded machine takes its time.
            await wait_until(
                pilot,
                lambda: "api exited" in _header(app),
                "the header to report the api",
                timeout=PROCESS_START_S,
            )
            await wait_until(
                pilot, lambda: any("api exited" in n.message for n in app._notifications), "toast"
            )
            note = next(n.message for n in app._notifications if "api exited" in n.message)
            assert note == f"api exited (code 3) — see {tmp_path / 'logs' / 'api.log'}"
            # The header's one line at 80 columns: the log under DATA_DIR, then the engine
            # (cut with an ellipsis where it meets the clock, which always shows).
            header = _header(app)
            assert header.startswith(
                " Overview   api exited (code 3) — see DATA_DIR/logs/api.log  eng"
            )
            assert header.rstrip().endswith(" UTC")
            assert app.sub_title == test_settings.redis_prefix  # CreatordeckApp.on_mount ran too
    finally:
        supervisor.stop()
    assert supervisor.problems() == []  # stopped on purpose: not a problem


def test_quitting_after_a_death_says_so_and_exits_1(
    test_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    """The whole demo (URLs given, so no embedded server): engine, api and mock start; the api is
    killed while the console runs; quitting stops the others and says what happened."""
    from console.demo import supervisor as demo
    from console.demo.ports import DemoPorts
    from console.demo.supervisor import DemoApp

    ports = DemoPorts(free_port(), free_port(), 0)
    settings = test_settings.model_copy(
        update={
            "data_dir": str(tmp_path),
            "encryption_key": SecretStr(Fernet.generate_key().decode()),
        }
    )
    seen: dict[str, Any] = {}

    def console_run(app: DemoApp) -> None:  # stands in for the interactive console
        api = next(c for c in app.supervisor.children if c.name == "api")
        assert api.process is not None
        api.process.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT_S
        while not app.background_problems() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen["children"] = app.supervisor.children

    monkeypatch.setattr(DemoApp, "run", console_run)
    assert demo.run_demo(settings, ports) == 1
    err = capfd.readouterr().err
    assert f"api exited (SIGKILL) — see {tmp_path / 'logs' / 'api.log'}" in err
    assert "• stopped" not in err
    for child in seen["children"]:  # none left running
        assert child.process is not None and child.process.poll() is not None, child.name
