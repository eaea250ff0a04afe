"""A heartbeat per engine replica, so the console can count the replicas that are alive.

arq's health-check key is one per queue (the last worker to report overwrites it), which says
"some worker of this queue is alive" but not how many. Each engine process therefore beats
every `INTERVAL_S` into one sorted set `{prefix}:engine:replicas` (member: the replica's name,
score: the beat time in ms) and a small hash per replica with its role and start time that
expires on its own (keys: engine.redis_keys). Readers drop members that have not beaten for
`STALE_S`.

The engine runs it with one line in `engine.runner.run_engine`, next to the other tasks:

    tasks.append(asyncio.create_task(heartbeat.beat(rt, stop, role.value)))
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from engine import logs
from engine.redis_keys import replica_key, replicas_key
from engine.runtime import Runtime
from storage.settings import Settings

INTERVAL_S = 5.0
STALE_S = 3 * INTERVAL_S

log = logs.get("engine.heartbeat")


async def beat_once(redis: Redis, settings: Settings, name: str, role: str, started: int) -> None:
    now_ms = int(time.time() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(replicas_key(settings), {name: now_ms})
        pipe.hset(
            replica_key(settings, name),
            mapping={
                "role": role,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_ms": started,
            },
        )
        pipe.pexpire(replica_key(settings, name), int(STALE_S * 1000))
        # Replicas that stopped without saying so (SIGKILL) fall out here.
        pipe.zremrangebyscore(replicas_key(settings), "-inf", now_ms - int(STALE_S * 1000) * 4)
        await pipe.execute()


async def beat(rt: Runtime, stop: asyncio.Event, role: str) -> None:
    """Beat until `stop`; a Redis outage is logged and the beat resumes when Redis is back."""
    started = int(time.time() * 1000)
    while not stop.is_set():
        try:
            await beat_once(rt.redis, rt.settings, rt.name, role, started)
        except Exception as exc:
            log.warning("engine.heartbeat_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_S)
    with contextlib.suppress(Exception):
        async with rt.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(replicas_key(rt.settings), rt.name)
            pipe.delete(replica_key(rt.settings, rt.name))
            await pipe.execute()


@dataclass(frozen=True, slots=True)
class Replica:
    name: str
    role: str
    last_beat: datetime
    started: datetime | None


async def replicas(redis: Redis, settings: Settings) -> tuple[Replica, ...]:
    """Replicas that beat within `STALE_S`, oldest first."""
    now_ms = int(time.time() * 1000)
    members = await redis.zrangebyscore(
        replicas_key(settings), now_ms - int(STALE_S * 1000), "+inf", withscores=True
    )
    if not members:
        return ()
    async with redis.pipeline(transaction=False) as pipe:
        for member, _ in members:
            pipe.hgetall(replica_key(settings, member.decode()))
        infos = await pipe.execute()
    found = []
    for (member, score), info in zip(members, infos, strict=True):
        started = info.get(b"started_ms")
        found.append(
            Replica(
                name=member.decode(),
                role=(info.get(b"role") or b"?").decode(),
                last_beat=datetime.fromtimestamp(score / 1000, UTC),
                started=datetime.fromtimestamp(int(started) / 1000, UTC) if started else None,
            )
        )
    found.sort(key=lambda r: r.started or r.last_beat)
    return tuple(found)
