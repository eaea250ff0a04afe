"""Which consoles are attached now (local and over SSH, with their actor): the Overview's list.

The engine's heartbeat (engine.heartbeat), for consoles: each console beats every
`INTERVAL_S` into one sorted set `{prefix}:consoles` (engine.redis_keys.consoles_key) whose
member is the console's identity itself (a small JSON object: id, actor, local/ssh, host, pid,
start), scored by the beat time in ms. So a read is ONE `ZRANGEBYSCORE` however many consoles
there are (no key per console, no SCAN), and a beat is one pipeline of three commands.

Expiry on its own: readers ignore members that have not beaten for `STALE_S`; each beat drops
members older than `FORGET_S` (a console killed without saying goodbye); the whole set expires
`FORGET_S` after the last beat of any console. A console that quits removes itself.

Times are Redis's and the machine's real time (a console's clock may be frozen in tests; it
does not decide who is alive).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from engine.redis_keys import consoles_key
from storage.settings import Settings

INTERVAL_S = 5.0
STALE_S = 3 * INTERVAL_S
FORGET_S = 4 * STALE_S


@dataclass(frozen=True, slots=True)
class ConsoleIdentity:
    """One console process: fixed for its life (so its member in the set stays the same)."""

    id: str  # host:pid:start, unique per process
    actor: str  # the audit log's who: the OS user, or the SSH key's name
    kind: str  # "local" or "ssh"
    host: str
    pid: int
    started_ms: int

    def member(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class AttachedConsole:
    identity: ConsoleIdentity
    last_beat: datetime


def _now_ms() -> int:
    return int(time.time() * 1000)


async def beat_once(redis: Redis, settings: Settings, me: ConsoleIdentity) -> None:
    now_ms = _now_ms()
    name = consoles_key(settings)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(name, {me.member(): now_ms})
        pipe.zremrangebyscore(name, "-inf", now_ms - int(FORGET_S * 1000))
        pipe.pexpire(name, int(FORGET_S * 1000))
        await pipe.execute()


async def leave(redis: Redis, settings: Settings, me: ConsoleIdentity) -> None:
    await redis.zrem(consoles_key(settings), me.member())


def _parse(member: bytes | str) -> ConsoleIdentity | None:
    try:
        raw = json.loads(member)
        return ConsoleIdentity(
            id=str(raw["id"]),
            actor=str(raw["actor"]),
            kind=str(raw["kind"]),
            host=str(raw["host"]),
            pid=int(raw["pid"]),
            started_ms=int(raw["started_ms"]),
        )
    except (ValueError, KeyError, TypeError):
        return None  # not ours (or an older layout): not listed


async def attached(redis: Redis, settings: Settings) -> tuple[AttachedConsole, ...]:
    """Consoles that beat within `STALE_S`, oldest start first: one ZRANGEBYSCORE."""
    members = await redis.zrangebyscore(
        consoles_key(settings), _now_ms() - int(STALE_S * 1000), "+inf", withscores=True
    )
    found = []
    for member, score in members:
        identity = _parse(member)
        if identity is not None:
            found.append(AttachedConsole(identity, datetime.fromtimestamp(score / 1000, UTC)))
    found.sort(key=lambda c: (c.identity.started_ms, c.identity.id))
    return tuple(found)
