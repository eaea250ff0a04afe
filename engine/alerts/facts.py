"""The facts every alert condition is judged on, read straight from Postgres and Redis.

One read serves both consumers: the console evaluates the conditions on it
(`engine.alerts.evaluate`), and the engine exports it as gauges for Prometheus
(`engine.alerts.sampler`). A dependency that cannot be read leaves its facts as None and its
error in `postgres_error` / `redis_error`: conditions on those facts are then "unknown", and the
dependency's own condition fires instead. Nothing here writes.

Cost of one read: the Postgres queries of `storage.queries.alerts` (one transaction) and, in
Redis, one ZCOUNT for the replicas, one HGETALL per platform's breaker, one quota read per
tracked platform and one pipelined read of 15 event-count hashes. Overdue fire times need one
cron step per group of active regions sharing a schedule and a latest fire time (Postgres
groups them: 100,000 regions ticked on a few hundred schedules are a few hundred rows here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache

from redis.asyncio import Redis

from engine import heartbeat, redis_keys
from engine.alerts import event_counts
from engine.alerts.conditions import BY_NAME, DEAD_LETTER_WINDOW_S, RATE_WINDOW_S
from engine.alerts.event_counts import EventCounts
from engine.platforms.registry import build_adapters
from engine.resilience import CircuitBreaker, RateLimiter
from engine.resilience.ratelimit import Quota
from storage.database import Database
from storage.models import Platform
from storage.queries import alerts as queries
from storage.queries.alerts import Counted, DeadLetterStats, RegionFires, TickStats
from storage.schedule import ScheduleError, parse_schedule
from storage.settings import Settings


@dataclass(frozen=True, slots=True)
class Overdue:
    region: str
    fire: datetime  # the first fire time with no ledger row


@dataclass(frozen=True, slots=True)
class PlatformFacts:
    platform: str
    breaker: str  # closed, open, half_open
    breaker_since: datetime | None  # when it last opened
    breaker_reason: str | None
    quota_used: int | None  # None: not a tracked platform (no quota of ours)
    quota_limit: int | None

    @property
    def quota_ratio(self) -> float | None:
        if self.quota_used is None or not self.quota_limit:
            return None
        return self.quota_used / self.quota_limit


@dataclass(frozen=True, slots=True)
class Facts:
    now: datetime
    postgres_error: str | None = None
    redis_error: str | None = None
    # From Postgres (None when it could not be read).
    overdue: tuple[Overdue, ...] | None = None
    ticks: TickStats | None = None
    publish_failed: Counted | None = None
    publish_unknown: Counted | None = None
    dead_letters: DeadLetterStats | None = None
    token_expiry: dict[str, datetime] | None = None
    # From Redis.
    replicas_alive: int | None = None
    platforms: tuple[PlatformFacts, ...] | None = None
    events: EventCounts | None = None


@lru_cache(maxsize=8192)
def _first_fire_after(cron: str, timezone: str, after: datetime) -> datetime | None:
    try:
        return parse_schedule(cron, timezone).next_fire(after)
    except (ScheduleError, OSError, ValueError, KeyError):
        return None  # an invalid schedule is shown on :regions; it owes no fire time


def overdue_regions(
    regions: list[RegionFires], now: datetime, grace: timedelta
) -> tuple[Overdue, ...]:
    """Regions whose first fire time after their latest ledger row is older than `grace`, by
    code (one cron step per group of regions sharing a schedule and a latest fire time).

    A fire time gets its ledger row when its tick starts, or a skipped/missed row from the
    scheduler; a fire time past `grace` with no row means no scheduler handled it.
    """
    found: list[Overdue] = []
    for group in regions:
        fire = _first_fire_after(group.cron, group.timezone, group.after)
        if fire is not None and fire <= now - grace:
            found.extend(Overdue(code, fire) for code in group.codes.split("\n"))
    return tuple(sorted(found, key=lambda overdue: overdue.region))


def breaker_platforms(tracked: dict[str, Quota]) -> list[str]:
    """Platforms that can have a breaker: the tracked ones and every publishing platform."""
    return sorted(set(tracked) | {p.value for p in Platform})


def tracked_quotas(settings: Settings) -> dict[str, Quota]:
    """The quota of every configured tracking platform (from the settings, as the engine)."""
    return {name: a.quota for name, a in build_adapters(settings.tracking).items()}


class FactReader:
    """Reads `Facts`; holds a quota reader (one `limits` storage per Redis client)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        quotas: dict[str, Quota] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self._quotas = quotas
        self._limiter: tuple[Redis, RateLimiter] | None = None

    @property
    def quotas(self) -> dict[str, Quota]:
        if self._quotas is None:
            try:
                self._quotas = tracked_quotas(self.settings)
            except Exception:  # invalid platform settings: no quotas to watch, breakers still
                self._quotas = {}
        return self._quotas

    async def read(self, now: datetime, redis: Redis | None, redis_error: str = "") -> Facts:
        """The facts at `now`; `redis` None (with why) when the caller could not connect."""
        facts = Facts(now=now)
        try:
            facts = await self._postgres(facts)
        except Exception as exc:
            facts = replace(facts, postgres_error=_describe(exc))
        if redis is None:
            return replace(facts, redis_error=redis_error or "not connected")
        try:
            facts = await self._redis(facts, redis)
        except Exception as exc:
            facts = replace(facts, redis_error=_describe(exc))
        return facts

    def _limiter_for(self, redis: Redis) -> RateLimiter:
        if self._limiter is None or self._limiter[0] is not redis:
            self._limiter = (redis, RateLimiter(redis, self.settings))
        return self._limiter[1]

    async def _postgres(self, facts: Facts) -> Facts:
        now = facts.now
        grace = timedelta(seconds=BY_NAME["RegionFireTimeMissed"].threshold)
        async with self.db.session() as session:
            regions = await queries.region_fires(session)
            ticks = await queries.tick_stats(session, now - timedelta(seconds=RATE_WINDOW_S))
            failed = await queries.publications_failed(
                session, now - timedelta(seconds=RATE_WINDOW_S)
            )
            unknown = await queries.publications_unknown(session)
            letters = await queries.dead_letter_stats(
                session, now - timedelta(seconds=DEAD_LETTER_WINDOW_S)
            )
            expiry = await queries.token_expiry_per_platform(session)
        return replace(
            facts,
            overdue=overdue_regions(regions, now, grace),
            ticks=ticks,
            publish_failed=failed,
            publish_unknown=unknown,
            dead_letters=letters,
            token_expiry=expiry,
        )

    async def _redis(self, facts: Facts, redis: Redis) -> Facts:
        now_ms = int(facts.now.timestamp() * 1000)
        alive = await redis.zcount(
            redis_keys.replicas_key(self.settings),
            now_ms - int(heartbeat.STALE_S * 1000),
            "+inf",
        )
        limiter = self._limiter_for(redis)
        quotas = self.quotas
        platforms = []
        for name in breaker_platforms(quotas):
            status = await CircuitBreaker(redis, self.settings, name).status()
            used = limit = None
            if name in quotas:
                usage = await limiter.usage(quotas[name])
                used, limit = usage.used, usage.limit
            platforms.append(
                PlatformFacts(
                    platform=name,
                    breaker=status.state.value,
                    breaker_since=status.opened_at,
                    breaker_reason=status.reason,
                    quota_used=used,
                    quota_limit=limit,
                )
            )
        events = await event_counts.window(redis, self.settings, facts.now, RATE_WINDOW_S)
        return replace(facts, replicas_alive=int(alive), platforms=tuple(platforms), events=events)

    async def close(self) -> None:
        if self._limiter is not None:
            await self._limiter[1].close()
            self._limiter = None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
