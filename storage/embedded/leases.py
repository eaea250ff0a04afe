"""Leases on the embedded servers of one DATA_DIR: the last creatordeck process out stops them.

Every process that starts or joins the embedded Postgres and Redis (`creatordeck demo`,
`console`, `console --serve-ssh`, `migrate`, …) holds a lease while it lives: a file
`DATA_DIR/leases/<pid>.<random>.lease` that names the process, with an exclusive `flock` held on
it. The kernel drops that lock when the process ends, however it ends (SIGKILL included), so a
lease whose lock can be taken belongs to nobody: it is removed. A reused pid cannot pass for a
live user, and no clock or timeout is involved.

Invariant: taking a lease and starting (or joining) the servers happen under one exclusive lock
(`DATA_DIR/leases/.lock`), and so do giving a lease back, counting the others and stopping the
servers. So a process that joins can never have the servers stopped under it by one that leaves,
and the servers stop when, and only when, the last lease is given back.

The lease file descriptor is not inheritable (Python's default), so a child process never keeps
a lease alive; a process that forks without exec does, until its child ends (the safe side).

Cost: one open file per process; giving a lease back tries one non-blocking lock per other lease.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LEASES = "leases"
LOCK = ".lock"
SUFFIX = ".lease"
COMMAND_CHARS = 200


@dataclass(frozen=True, slots=True)
class Holder:
    """A live process that holds a lease."""

    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def this_command() -> str:
    """How this process was started, for the other users' messages (never holds secrets:
    no creatordeck command takes one as an argument)."""
    return " ".join(["creatordeck", *sys.argv[1:]])[:COMMAND_CHARS]


def _folder(data_dir: Path) -> Path:
    folder = data_dir / LEASES
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the leases' lock of `data_dir` (blocks while another process holds it)."""
    fd = os.open(_folder(data_dir) / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


class Lease:
    """This process's lease; give it back exactly once (later calls do nothing)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def give_back(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def take(data_dir: Path, command: str | None = None) -> Lease:
    """A new lease for this process; call it under `exclusive(data_dir)`."""
    path = _folder(data_dir) / f"{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        body = {"pid": os.getpid(), "command": this_command() if command is None else command}
        os.write(fd, json.dumps(body).encode())
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return Lease(path, fd)


def _describe(path: Path) -> Holder:
    try:
        body = json.loads(path.read_text())
        return Holder(int(body["pid"]), str(body.get("command", "")))
    except (OSError, ValueError, KeyError, TypeError):
        pid = path.name.split(".", 1)[0]
        return Holder(int(pid) if pid.isdigit() else 0, "")


def holders(data_dir: Path) -> list[Holder]:
    """The live processes holding a lease (this one's too, if it holds one); stale leases are
    removed. Call it under `exclusive(data_dir)`."""
    found: list[Holder] = []
    for path in sorted(_folder(data_dir).glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                found.append(_describe(path))  # its process is alive and holds it
                continue
            path.unlink(missing_ok=True)  # nobody holds it: its process has ended
        finally:
            os.close(fd)
    return found
