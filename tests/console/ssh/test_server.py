"""`console --serve-ssh`: a real SSH server on loopback, real SSH client sessions (asyncssh's
client), each with its own console process on a pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
import pytest
import structlog
from redis.asyncio import Redis

from console.ssh import server as ssh
from console.ssh.authorized_keys import load_authorized_keys, match_key
from engine import queues, tick_queue
from engine.tick_queue import TickRequest, enqueue_ticks
from storage.settings import EngineSettings, Settings

pytestmark = pytest.mark.slow
# A scheduled tick is its shard's job (default TICK_SHARDS, as the tests' settings use).
DETROIT_SHARD = (
    tick_queue.shard_key("DETROIT_METRO") % EngineSettings.model_fields["tick_shards"].default
)

DEADLINE_S = 60.0  # a console process starts in a few seconds; the machine may be busy
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


@dataclass
class Keys:
    folder: Path
    alice: asyncssh.SSHKey  # read-write
    bob: asyncssh.SSHKey  # read-only
    carol: asyncssh.SSHKey  # read-only after a quoted option holding a space
    dave: asyncssh.SSHKey  # READ-ONLY: option names are case-insensitive, as in OpenSSH
    mallory: asyncssh.SSHKey  # FROM="…": a restriction asyncssh would not enforce: refused
    oscar: asyncssh.SSHKey  # command="…": an option this server cannot honour: refused
    trent: asyncssh.SSHKey  # options that do not parse: refused
    eve: asyncssh.SSHKey  # not in the file


def public(key: asyncssh.SSHKey) -> str:
    return key.export_public_key().decode().strip()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    names = ("alice", "bob", "carol", "dave", "mallory", "oscar", "trent", "eve")
    made = {name: asyncssh.generate_private_key("ssh-ed25519") for name in names}
    lines = [
        "# who may open the console",
        public(made["alice"]) + " alice@ops",
        "read-only " + public(made["bob"]) + " bob@ops",
        'environment="A=b c",read-only ' + public(made["carol"]) + " carol@ops",
        "READ-ONLY " + public(made["dave"]) + " dave@ops",
        'FROM="10.9.9.9" ' + public(made["mallory"]) + " mallory@ops",
        'command="/bin/true" ' + public(made["oscar"]) + " oscar@ops",
        'read-only,from="127.0.0.1 ' + public(made["trent"]) + " trent@ops",
        "not a key at all",  # skipped with a warning, never fatal
    ]
    path = tmp_path / "authorized_keys"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return Keys(tmp_path, **made)


@pytest.fixture
async def server(test_settings: Settings, keys: Keys) -> AsyncIterator[int]:
    options = ssh.ServeOptions(authorized_keys=keys.folder / "authorized_keys", max_sessions=4)
    acceptor = await ssh.start_server(
        test_settings, "127.0.0.1", 0, options, keys.folder / "host_key"
    )
    try:
        yield acceptor.sockets[0].getsockname()[1]
    finally:
        acceptor.close()
        await acceptor.wait_closed()


class Screen:
    """What the client has received, escape sequences removed, for `wait_for`."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self.process = process
        self.raw = b""
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            chunk = await self.process.stdout.read(65536)
            if not chunk:
                return
            self.raw += chunk

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    async def wait_for(self, needle: str, after: int = 0) -> int:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            at = self.text.find(needle, after)
            if at >= 0:
                return at
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared; last: {self.text[-800:]!r}")
            await asyncio.sleep(0.05)

    async def keys(self, *keys: str) -> None:
        for key in keys:
            self.process.stdin.write(key.encode())
            await asyncio.sleep(0.15)

    async def command(self, name: str) -> None:
        """`:name` + enter, typed once the command bar is on screen: keys sent before it opens
        would reach the screen below it (where `q` quits), however long a busy machine takes."""
        mark = len(self.text)
        await self.keys(":")
        await self.wait_for("tab completes", mark)
        await self.keys(*name, "\r")


async def connect(port: int, key: asyncssh.SSHKey, user: str) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1", port, username=user, client_keys=[key], known_hosts=None, agent_path=None
    )


async def open_console(conn: asyncssh.SSHClientConnection) -> Screen:
    process = await conn.create_process(
        term_type="xterm-256color", term_size=(80, 24), encoding=None
    )
    return Screen(process)


async def seed_tick(settings: Settings) -> str:
    arq = await queues.connect(settings)
    try:
        # The console behind SSH runs on the real clock: a tick due tomorrow by that clock.
        fire = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        await enqueue_ticks(arq, settings, [TickRequest("DETROIT_METRO", fire)])
        return tick_queue.tick_job_id(settings, "DETROIT_METRO", fire)
    finally:
        await arq.aclose()


async def test_a_listed_key_gets_a_console_and_can_edit(
    server: int, keys: Keys, test_settings: Settings, redis: Redis
) -> None:
    job_id = await seed_tick(test_settings)
    async with await connect(server, keys.alice, "alice") as conn:
        screen = await open_console(conn)
        await screen.wait_for("Overview")
        assert "READ-ONLY" not in screen.text
        # The palette offers nothing that writes on the server (Textual's Screenshot would).
        await screen.keys("\x10")  # ctrl+p
        at = await screen.wait_for("Search for commands")
        await screen.keys(*"screensho")
        await screen.wait_for("No matches found", at)
        await screen.keys("\x1b")
        await screen.command("queues")
        at = await screen.wait_for(f"tick-shard:{DETROIT_SHARD}:")
        await screen.keys("x")
        await screen.wait_for("Delete job", at)
        await screen.keys("y")
        deadline = time.monotonic() + DEADLINE_S
        while await redis.zscore(tick_queue.queue_name(test_settings), job_id) is not None:
            assert time.monotonic() < deadline, "the job was not deleted over SSH"
            await asyncio.sleep(0.05)
        # A window size change reaches the console (SIGWINCH): it redraws for 200 columns.
        screen.process.change_terminal_size(200, 60)
        await screen.wait_for("ready/deferred/running")
        await screen.keys("q")
        result = await asyncio.wait_for(screen.process.wait(), DEADLINE_S)
        assert result.exit_status == 0


@pytest.mark.parametrize("who", ["bob", "carol", "dave"])
async def test_a_read_only_key_cannot_edit_and_is_told_why(
    server: int, keys: Keys, test_settings: Settings, redis: Redis, who: str
) -> None:
    job_id = await seed_tick(test_settings)
    async with await connect(server, getattr(keys, who), who) as conn:
        screen = await open_console(conn)
        await screen.wait_for("READ-ONLY")
        await screen.command("queues")
        at = await screen.wait_for(f"tick-shard:{DETROIT_SHARD}:")
        await screen.keys("x")
        await screen.wait_for("read-only console", at)
        await screen.wait_for("SSH key is marked", at)
        assert "Delete job" not in screen.text
        assert await redis.zscore(tick_queue.queue_name(test_settings), job_id) is not None


async def test_keys_with_options_the_server_cannot_honour_are_refused_line_by_line(
    server: int, keys: Keys
) -> None:
    with structlog.testing.capture_logs() as logged:
        for who in ("mallory", "oscar", "trent"):
            with pytest.raises(asyncssh.PermissionDenied):
                await connect(server, getattr(keys, who), who)
        async with await connect(server, keys.alice, "alice") as conn:  # the rest still work
            result = await conn.run("true", timeout=DEADLINE_S)
            assert "only serves the creatordeck console" in str(result.stderr)
    refused = {e["line"]: e["reason"] for e in logged if e["event"] == "ssh.key_line_refused"}
    assert refused == {
        6: "option 'FROM' is not supported (write it in lower case: 'from')",
        7: "option 'command' is not supported",
    }
    skipped = {e["line"]: e["error"] for e in logged if e["event"] == "ssh.bad_authorized_key"}
    assert skipped[8] == "Unbalanced quote in options"
    assert all(
        public(getattr(keys, name)).split()[1] not in repr(logged)
        for name in ("mallory", "oscar", "trent")
    ), "key material in the log"


async def test_an_unlisted_key_is_refused(server: int, keys: Keys) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await connect(server, keys.eve, "alice")


async def test_a_session_without_a_terminal_or_with_a_command_is_refused(
    server: int, keys: Keys
) -> None:
    async with await connect(server, keys.alice, "alice") as conn:
        result = await conn.run("cat /etc/passwd", timeout=DEADLINE_S)
        assert result.exit_status == 1
        assert "only serves the creatordeck console" in str(result.stderr)
        result = await conn.run(timeout=DEADLINE_S, input="")
        assert result.exit_status == 1
        assert "needs a terminal" in str(result.stderr)


@pytest.mark.parametrize(
    ("options", "granted"),
    [
        ("", "rw"),
        ("read-only ", "ro"),
        ('environment="A=b c",read-only ', "ro"),  # a space inside quotes ends nothing
        ('environment="A=b,read-only=no",Read-Only ', "ro"),  # a comma inside quotes neither
        ("no-port-forwarding,no-agent-forwarding,READ-ONLY ", "ro"),
        ('from="127.0.0.1",read-only ', "ro"),
        ('from="10.9.9.9" ', None),  # not from here
        ('From="10.9.9.9" ', None),  # a restriction asyncssh would not enforce: refused
        ("restrict ", None),  # would forbid the pty the console needs: refused
        ('expiry-time="20200101" ', None),  # a restriction this server cannot honour
    ],
)
def test_options_are_parsed_as_openssh_does_and_never_widen_what_a_key_gets(
    tmp_path: Path, options: str, granted: str | None
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "authorized_keys"
    path.write_text(f"{options}{public(key)} pat@ops\n")
    client = key.convert_to_public()  # what the server sees
    entry = match_key(load_authorized_keys(path), client, "127.0.0.1", "127.0.0.1")
    if granted is None:
        assert entry is None
    else:
        assert entry is not None and entry.name == "pat@ops"
        assert ("ro" if entry.read_only else "rw") == granted


def test_loopback_by_default_and_config_errors(tmp_path: Path) -> None:
    assert ssh.parse_address("127.0.0.1:2222") == ("127.0.0.1", 2222)
    assert ssh.parse_address(":2222") == ("127.0.0.1", 2222)
    assert ssh.parse_address("[::1]:2222") == ("::1", 2222)
    with pytest.raises(ssh.SSHConfigError, match="not a loopback address"):
        ssh.parse_address("0.0.0.0:2222")
    assert ssh.parse_address("0.0.0.0:2222", allow_remote=True) == ("0.0.0.0", 2222)
    with pytest.raises(ssh.SSHConfigError, match="HOST:PORT"):
        ssh.parse_address("127.0.0.1:ssh")
    loose = tmp_path / "keys"
    loose.write_text(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode())
    loose.chmod(0o666)
    options = ssh.ServeOptions(authorized_keys=loose)
    with pytest.raises(ssh.SSHConfigError, match="chmod 600"):
        asyncio.run(ssh.start_server(Settings(), "127.0.0.1", 0, options, tmp_path / "hk"))
    missing = ssh.ServeOptions(authorized_keys=tmp_path / "nope")
    with pytest.raises(ssh.SSHConfigError, match="no authorised keys file"):
        asyncio.run(ssh.start_server(Settings(), "127.0.0.1", 0, missing, tmp_path / "hk"))


@pytest.mark.parametrize("server_hup", ["default", "ignored"], ids=["plain", "under-nohup"])
async def test_a_console_whose_server_died_is_hung_up_not_left_spinning(server_hup: str) -> None:
    """The pty is the console's controlling terminal: when the master end closes without the
    server stopping the console (the server SIGKILLed), the kernel sends it SIGHUP. A process
    that merely has the pty as stdin would sleep on (and a Textual console would spin on EIO).
    A server started under nohup ignores SIGHUP; its consoles must not inherit that."""
    master, slave = os.openpty()
    before = signal.signal(
        signal.SIGHUP, signal.SIG_IGN if server_hup == "ignored" else signal.SIG_DFL
    )
    try:
        child = await ssh.spawn_on_pty(
            [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ), slave
        )
    finally:
        signal.signal(signal.SIGHUP, before)
    os.close(slave)
    try:
        os.close(master)  # what the kernel does to a SIGKILLed server's fds
        code = await asyncio.wait_for(child.wait(), 10)
        assert code == -signal.SIGHUP
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
