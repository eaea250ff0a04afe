"""`creatordeck console --serve-ssh HOST:PORT`: the console for SSH clients (asyncssh).

Each SSH connection gets its own console: a `creatordeck console` process on a fresh
pseudo-terminal, bridged to the SSH channel (keys in, screen out, window size changes as
SIGWINCH). A console process cannot see another's screen or state, and when the client goes,
its console is stopped.

Who may connect: public keys in an OpenSSH-style authorised keys file, re-read at every
login; `read-only` and `from=` options per key, anything it cannot honour refused line by line
(console/ssh/authorized_keys.py). The console process learns from its environment
(console.ssh.session) that it serves an SSH client, and why it is read-only: its refusals say so,
and its palette offers nothing that writes on this machine.

No passwords, no keyboard-interactive, no port/agent/X11 forwarding, no commands: a pty
session with the console, nothing else. Bound to loopback unless `--ssh-allow-remote`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import os
import signal
import struct
import sys
import termios
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from console.ssh.authorized_keys import KeyEntry, load_authorized_keys, match_key
from console.ssh.session import READ_ONLY_REASON_ENV, SSH_KEY_ENV, SSH_OPERATOR_ENV
from engine import logs
from storage.settings import Settings

DEFAULT_DIR = Path.home() / ".config" / "creatordeck"
DEFAULT_AUTHORIZED_KEYS = DEFAULT_DIR / "authorized_keys"
DEFAULT_HOST_KEY = DEFAULT_DIR / "ssh_host_ed25519_key"
DEFAULT_MAX_SESSIONS = 8
DEFAULT_TERM = "xterm-256color"
STOP_GRACE_S = 3.0

log = logs.get("console.ssh.server")


class SSHConfigError(Exception):
    """The server cannot start as asked; the message says what to change."""


def parse_address(value: str, allow_remote: bool = False) -> tuple[str, int]:
    """`HOST:PORT` (or `:PORT` / `PORT` for 127.0.0.1), loopback unless `allow_remote`."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        message = f"--serve-ssh {value!r}: expected HOST:PORT, e.g. 127.0.0.1:2222"
        raise SSHConfigError(message) from None
    if not 0 <= port <= 65535:
        raise SSHConfigError(f"--serve-ssh {value!r}: port must be 0-65535")
    if not allow_remote and not _is_loopback(host):
        raise SSHConfigError(
            f"--serve-ssh {value!r}: {host} is not a loopback address; the console serves "
            "127.0.0.1 by default (pass --ssh-allow-remote to bind elsewhere, on purpose)"
        )
    return host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_host_key(path: Path) -> asyncssh.SSHKey:
    """The server's host key; created (ed25519, mode 600) on first start."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="creatordeck console")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.export_private_key())
    log.info("ssh.host_key_created", path=str(path))
    return key


@dataclass
class ServeOptions:
    authorized_keys: Path
    read_only: bool = False  # every session read-only, whatever its key says
    max_sessions: int = DEFAULT_MAX_SESSIONS
    console_argv: tuple[str, ...] = (sys.executable, "-m", "console.cli", "console")


class _Sessions:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


class ConsoleSSHServer(asyncssh.SSHServer):
    """One per connection: public-key auth against the file, then at most one console."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.entry: KeyEntry | None = None
        self.peer = "?"
        self.sessions = 0
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        host = addr = self.peer.rsplit(":", 1)[0]
        try:
            lines = load_authorized_keys(self.options.authorized_keys)
        except OSError as exc:
            log.error("ssh.authorized_keys_unreadable", error=str(exc))
            return False
        entry = match_key(lines, key, host, addr)
        if entry is not None:
            self.entry = entry
            log.info(
                "ssh.key_accepted",
                peer=self.peer,
                user=username,
                key=entry.name,
                line=entry.line_no,
                operator=entry.operator,
                read_only=entry.read_only or self.options.read_only,
            )
            return True
        log.warning(
            "ssh.key_refused", peer=self.peer, user=username, fingerprint=key.get_fingerprint()
        )
        return False


def _set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_terminal() -> None:
    # In the child, after setsid: the pty becomes its controlling terminal (what sshd's
    # login_tty does). Should this server die without stopping it (SIGKILL, OOM), the kernel
    # hangs the terminal up and the console gets SIGHUP; without a controlling terminal it
    # read EIO for ever, an orphan spinning at most of a core (seen: 49 minutes at 53%).
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # A server started under nohup ignores SIGHUP, and an ignored signal stays ignored across
    # exec: the console must take the hang-up whatever its server was started with.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


async def spawn_on_pty(
    argv: list[str], env: dict[str, str], slave: int
) -> asyncio.subprocess.Process:
    """Start `argv` on the pty whose slave end is `slave`: its own session and process group
    (stopped as one), the pty its controlling terminal (hung up when the master closes)."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        # Runs between fork and exec: one ioctl and one signal reset, no import, no lock
        # (safe beside threads).
        preexec_fn=_take_terminal,
    )


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def read_only_reason(entry: KeyEntry, options: ServeOptions) -> str | None:
    """Why this session's console is read-only, in the words its refusals use; None: it is not."""
    if entry.read_only and options.read_only:
        return "this SSH key is marked read-only, and the server runs with --read-only"
    if entry.read_only:
        return "this SSH key is marked read-only"
    if options.read_only:
        return "the SSH server runs with --read-only"
    return None


def console_env(
    settings: Settings,
    term: str,
    who: str,
    read_only_because: str | None = None,
    operator: str | None = None,
) -> dict[str, str]:
    """The console process's environment: this server's servers and prefix, the client's
    terminal type, the key's name as the audit log's actor, and that this is an SSH session
    (console.ssh.session: the palette offers nothing that writes on this machine)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        REDIS_PREFIX=settings.redis_prefix,
        TERM=term,
        LOGNAME=who,
        USER=who,
    )
    env[SSH_KEY_ENV] = who
    env.pop(READ_ONLY_REASON_ENV, None)
    env.pop(SSH_OPERATOR_ENV, None)
    if operator is not None:
        env[SSH_OPERATOR_ENV] = operator
    if read_only_because:
        env[READ_ONLY_REASON_ENV] = read_only_because
    env.pop("COLORTERM", None)  # the client's terminal decides: 256 colours via TERM
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


async def run_console_session(
    process: asyncssh.SSHServerProcess[bytes],
    settings: Settings,
    options: ServeOptions,
    sessions: _Sessions,
) -> None:
    conn = process.get_extra_info("connection")
    server: ConsoleSSHServer = conn.get_owner()
    entry = server.entry
    if entry is None:  # cannot happen after auth; refuse rather than serve anonymously
        process.exit(1)
        return
    if process.command:
        process.stderr.write(b"this server only serves the creatordeck console (no commands)\r\n")
        process.exit(1)
        return
    term = process.get_terminal_type()
    if term is None:
        process.stderr.write(b"the console needs a terminal: connect with ssh -t\r\n")
        process.exit(1)
        return
    server.sessions += 1
    if server.sessions > 1:
        process.stderr.write(b"one console per connection: open another SSH connection\r\n")
        process.exit(1)
        return
    if sessions.open >= sessions.limit:
        process.stderr.write(
            f"{sessions.open} consoles are open (the limit); try again later\r\n".encode()
        )
        process.exit(1)
        return
    sessions.open += 1
    read_only = entry.read_only or options.read_only
    because = read_only_reason(entry, options)
    cols, rows, _, _ = process.get_terminal_size()
    argv = list(options.console_argv) + (["--read-only"] if read_only else [])
    env = console_env(settings, term or DEFAULT_TERM, f"ssh:{entry.name}", because, entry.operator)
    master, slave = os.openpty()
    _set_winsize(slave, cols or 80, rows or 24)
    try:
        proc = await spawn_on_pty(argv, env, slave)
    except OSError as exc:
        os.close(master)
        os.close(slave)
        sessions.open -= 1
        process.stderr.write(f"cannot start the console: {exc}\r\n".encode())
        process.exit(1)
        return
    os.close(slave)
    os.set_blocking(master, False)
    log.info("ssh.console_started", peer=server.peer, key=entry.name, pid=proc.pid, ro=read_only)
    loop = asyncio.get_running_loop()
    screen_done = asyncio.Event()

    def on_output() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the console closed its terminal
            data = b""
        if not data:
            loop.remove_reader(master)
            screen_done.set()
            return
        process.stdout.write(data)

    loop.add_reader(master, on_output)

    async def pump_input() -> None:
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as change:
                _set_winsize(master, change.width, change.height)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGWINCH)
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue
            except (asyncssh.DisconnectError, asyncssh.ConnectionLost, BrokenPipeError):
                return
            if not data:
                return
            view = memoryview(data)
            while view:
                try:
                    written = os.write(master, view)
                except BlockingIOError:
                    await asyncio.sleep(0.005)
                    continue
                except OSError:
                    return
                view = view[written:]

    pump = asyncio.create_task(pump_input())
    waiter = asyncio.create_task(proc.wait())
    try:
        await asyncio.wait([pump, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        pump.cancel()
        await _stop(proc)  # the client left (or the console quit): no orphan consoles
        # Let the last frames reach the client before closing the channel.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(screen_done.wait(), 0.5)
        loop.remove_reader(master)
        os.close(master)
        sessions.open -= 1
        log.info("ssh.console_stopped", peer=server.peer, key=entry.name, code=proc.returncode)
    with contextlib.suppress(Exception):
        process.exit(proc.returncode or 0)


async def start_server(
    settings: Settings,
    host: str,
    port: int,
    options: ServeOptions,
    host_key: Path,
) -> asyncssh.SSHAcceptor:
    """Start listening; returns the acceptor (`.sockets[0].getsockname()` has the port)."""
    if not options.authorized_keys.is_file():
        raise SSHConfigError(
            f"no authorised keys file at {options.authorized_keys}: create it with one public "
            "key per line (e.g. `cat ~/.ssh/id_ed25519.pub >> "
            f"{options.authorized_keys}`), prefix a line with `read-only ` for a read-only key"
        )
    mode = options.authorized_keys.stat().st_mode
    if mode & 0o022:
        raise SSHConfigError(
            f"{options.authorized_keys} is writable by group or others; chmod 600 it"
        )
    if not load_authorized_keys(options.authorized_keys):
        raise SSHConfigError(f"{options.authorized_keys} holds no usable public key")
    key = ensure_host_key(host_key)
    sessions = _Sessions(options.max_sessions)

    async def handle(process: asyncssh.SSHServerProcess[Any]) -> None:
        await run_console_session(process, settings, options, sessions)

    return await asyncssh.create_server(
        lambda: ConsoleSSHServer(options),
        host,
        port,
        server_host_keys=[key],
        process_factory=handle,
        encoding=None,
        line_editor=False,
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        keepalive_interval=30,
        login_timeout=30,
    )


async def serve_forever(
    settings: Settings, host: str, port: int, options: ServeOptions, host_key: Path
) -> None:
    server = await start_server(settings, host, port, options, host_key)
    bound = server.sockets[0].getsockname()
    log.info("ssh.listening", host=bound[0], port=bound[1], keys=str(options.authorized_keys))
    print(f"creatordeck console on ssh://{bound[0]}:{bound[1]} (ctrl+c stops)", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
