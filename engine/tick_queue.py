"""The tick queue: tick job ids, enqueueing ticks, listing and removing them.

The rest of the code speaks of ticks; the keys come from engine.redis_keys and jobs are created
through engine.queues (the same rules for every queue of ours).

Ticks come in shards: one job per fire time and shard of regions,
`{prefix}:tick-shard:{shard}:{epoch}`, whatever the number of replicas (a region's shard is
the first 32 bits of md5(code) modulo TICK_SHARDS). A manual run ("run now") is one job for one
region, `{prefix}:tick:{REGION}:{epoch}:manual`; a backfilled fire time is one job for one region
too, `{prefix}:tick:{REGION}:{epoch}:backfill` (deterministic: two replicas asking for the same
backfill make one job per fire time). Every enqueue that creates a job publishes on
the queue's wake channel, so idle workers sleep instead of polling (engine.worker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from arq.connections import ArqRedis

from engine import redis_keys
from engine.queues import NewJob, enqueue_if_absent
from storage.settings import Settings

TICKS = redis_keys.TICKS
TICK_FUNCTION = "tick"


def queue_name(settings: Settings) -> str:
    return redis_keys.queue_key(settings, TICKS)


def health_check_key(settings: Settings) -> str:
    return redis_keys.health_check_key(settings, TICKS)


def shard_key(region_code: str) -> int:
    """The first 32 bits of md5(code): Postgres computes the same (`region.shard_key`)."""
    return int(hashlib.md5(region_code.encode(), usedforsecurity=False).hexdigest()[:8], 16)


def shard_of(settings: Settings, region_code: str) -> int:
    return shard_key(region_code) % settings.engine.tick_shards


@dataclass(frozen=True, slots=True)
class TickRef:
    """A tick as it sits in the queue: a shard of regions, or one region's manual run."""

    job_id: str
    shard: int | None  # None: a manual run of `region_code`
    fire: datetime
    manual: bool
    region_code: str | None = None
    buffered: bool = False  # a shard's follow-up for regions waiting on a previous run
    backfill: bool = False  # a past fire time an operator asked to run (engine.backfill)


def shard_job_id(settings: Settings, shard: int, fire: datetime, buffered: bool = False) -> str:
    suffix = ":buffer" if buffered else ""
    return f"{settings.redis_prefix}:tick-shard:{shard}:{int(fire.timestamp())}{suffix}"


def tick_job_id(
    settings: Settings,
    region_code: str,
    fire: datetime,
    manual: bool = False,
    backfill: bool = False,
) -> str:
    """The job that runs `region_code` at `fire`: its shard's, or its own manual or backfill one."""
    if backfill:
        return f"{settings.redis_prefix}:tick:{region_code}:{int(fire.timestamp())}:backfill"
    if not manual:
        return shard_job_id(settings, shard_of(settings, region_code), fire)
    return f"{settings.redis_prefix}:tick:{region_code}:{int(fire.timestamp())}:manual"


def parse_tick_job_id(settings: Settings, job_id: str) -> TickRef | None:
    shard_head = f"{settings.redis_prefix}:tick-shard:"
    if job_id.startswith(shard_head):
        rest = job_id[len(shard_head) :]
        buffered = rest.endswith(":buffer")
        if buffered:
            rest = rest[: -len(":buffer")]
        shard, _, stamp = rest.partition(":")
        if not shard.isdigit() or not stamp.isdigit():
            return None
        fire = datetime.fromtimestamp(int(stamp), UTC)
        return TickRef(job_id, int(shard), fire, False, buffered=buffered)
    head = f"{settings.redis_prefix}:tick:"
    if not job_id.startswith(head):
        return None
    rest, _, suffix = job_id[len(head) :].rpartition(":")
    if suffix not in ("manual", "backfill"):
        return None
    code, _, stamp = rest.rpartition(":")
    if not code or not stamp.isdigit():
        return None
    fire = datetime.fromtimestamp(int(stamp), UTC)
    return TickRef(job_id, None, fire, True, code, backfill=suffix == "backfill")


@dataclass(frozen=True, slots=True)
class TickRequest:
    region_code: str
    fire: datetime
    manual: bool = False
    backfill: bool = False  # implies manual: a past fire time run on request, its ledger row queued


@dataclass(frozen=True, slots=True)
class ShardTick:
    """The tick job of one shard at one fire time (`codes`: only these regions, a follow-up)."""

    shard: int
    fire: datetime
    codes: tuple[str, ...] | None = None
    run_at: datetime | None = None  # default: the fire time

    def job(self, settings: Settings) -> NewJob:
        buffered = self.codes is not None
        return NewJob(
            job_id=shard_job_id(settings, self.shard, self.fire, buffered),
            function=TICK_FUNCTION,
            args=(
                int(self.fire.timestamp()),
                self.shard,
                list(self.codes) if self.codes is not None else None,
                False,
            ),
            run_at_ms=int((self.run_at or self.fire).timestamp() * 1000),
        )


def _tick_job(settings: Settings, tick: TickRequest) -> NewJob:
    if tick.backfill:
        # Ready at once (its fire time is past); the fifth argument tells the tick it is one.
        return NewJob(
            job_id=tick_job_id(settings, tick.region_code, tick.fire, backfill=True),
            function=TICK_FUNCTION,
            args=(int(tick.fire.timestamp()), None, [tick.region_code], True, True),
            run_at_ms=int(tick.fire.timestamp() * 1000),
        )
    if not tick.manual:
        return ShardTick(shard_of(settings, tick.region_code), tick.fire).job(settings)
    return NewJob(
        job_id=tick_job_id(settings, tick.region_code, tick.fire, True),
        function=TICK_FUNCTION,
        args=(int(tick.fire.timestamp()), None, [tick.region_code], True),
        run_at_ms=int(tick.fire.timestamp() * 1000),
    )


async def enqueue_ticks(redis: ArqRedis, settings: Settings, ticks: list[TickRequest]) -> int:
    """Enqueue the tick jobs that run these regions at these fire times (a scheduled one is its
    shard's job); an id that exists (queued, running or done) is left alone. A manual tick's
    fire time is the moment it was asked for, by the caller's clock (the console's `now`), so it
    is ready at once."""
    jobs = {job.job_id: job for job in (_tick_job(settings, tick) for tick in ticks)}
    return await enqueue_if_absent(redis, queue_name(settings), jobs.values())


async def enqueue_shards(redis: ArqRedis, settings: Settings, shards: Iterable[ShardTick]) -> int:
    jobs = {job.job_id: job for job in (shard.job(settings) for shard in shards)}
    return await enqueue_if_absent(redis, queue_name(settings), jobs.values())


async def pending_ticks(redis: ArqRedis, settings: Settings) -> list[TickRef]:
    """Every tick in the queue: deferred, ready, or running (arq removes a job when it ends)."""
    ids = await redis.zrange(queue_name(settings), 0, -1)
    refs = (parse_tick_job_id(settings, raw.decode()) for raw in ids)
    return [ref for ref in refs if ref is not None]


async def remove_jobs(redis: ArqRedis, settings: Settings, job_ids: list[str]) -> int:
    """Take jobs out of the queue. A job a worker already runs finishes; the tick checks itself."""
    if not job_ids:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(queue_name(settings), *job_ids)
        pipe.delete(*(redis_keys.job_key(job_id) for job_id in job_ids))
        removed, _ = await pipe.execute()
    return int(removed)


async def engine_health(redis: ArqRedis, settings: Settings) -> str | None:
    """arq's health-check line of the tick workers, or None when no engine reported lately."""
    raw = await redis.get(health_check_key(settings))
    return raw.decode() if raw else None
