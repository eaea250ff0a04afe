"""The console's presence: this console beats while it runs, and the Overview lists who is on.

engine.console_presence does the Redis work (one sorted set, one ZRANGEBYSCORE per read); this
read model says who this console is (its actor as the audit log names it: the OS user, which
for an SSH session is the key's name; local or SSH from console.ssh.session) and turns the set
into lines for the Overview. This console is always in its own list, beat or not yet (its first
beat may still be on its way when the Overview first loads).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from arq.connections import ArqRedis

from console.data.common import STORE_ERRORS
from console.ssh.session import Session
from engine import console_presence
from engine.console_presence import ConsoleIdentity
from storage.queries.audit import current_actor
from storage.settings import Settings

INTERVAL_S = console_presence.INTERVAL_S


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    actor: str
    kind: str  # "local" or "ssh"
    host: str
    since: datetime
    me: bool  # this very console


def identity(session: Session) -> ConsoleIdentity:
    """Who this console process is, for its whole life."""
    host, pid, started_ms = socket.gethostname(), os.getpid(), int(time.time() * 1000)
    return ConsoleIdentity(
        id=f"{host}:{pid}:{started_ms}",
        actor=current_actor(),
        kind="ssh" if session.over_ssh else "local",
        host=host,
        pid=pid,
        started_ms=started_ms,
    )


async def keep_attached(
    pool: Callable[[], Awaitable[ArqRedis]], settings: Settings, me: ConsoleIdentity
) -> None:
    """Beat every INTERVAL_S until cancelled (the app's worker); Redis away: try again later
    (the Overview says so through its own loads)."""
    while True:
        with contextlib.suppress(*STORE_ERRORS):
            await console_presence.beat_once(await pool(), settings, me)
        await asyncio.sleep(INTERVAL_S)


async def leave(redis: ArqRedis, settings: Settings, me: ConsoleIdentity) -> None:
    with contextlib.suppress(*STORE_ERRORS):  # else gone from the list within STALE_S anyway
        await console_presence.leave(redis, settings, me)


def _line(identity: ConsoleIdentity, me: ConsoleIdentity) -> ConsoleLine:
    since = datetime.fromtimestamp(identity.started_ms / 1000, UTC)
    return ConsoleLine(identity.actor, identity.kind, identity.host, since, identity.id == me.id)


async def load_consoles(
    redis: ArqRedis, settings: Settings, me: ConsoleIdentity
) -> tuple[ConsoleLine, ...]:
    """The consoles attached now, this one included, oldest first."""
    found = [c.identity for c in await console_presence.attached(redis, settings)]
    if all(identity.id != me.id for identity in found):
        found.append(me)
    found.sort(key=lambda identity: (identity.started_ms, identity.id))
    return tuple(_line(identity, me) for identity in found)
