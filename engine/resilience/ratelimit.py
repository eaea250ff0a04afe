"""Platform quotas shared through Redis, so every worker of every process stays under them.

A `Quota` is "at most `calls` requests per `per_s` seconds" for one platform, per token (an app
key, a connected account: the `token_id` you pass; "app" when the quota is per application).
Counting uses the `limits` library's sliding-window counter in Redis (one atomic Lua call per
request, keys under `{prefix}:quota:`). On top of it:

- `acquire()` waits until the quota has room (bounded by `max_wait_s`, then `RateLimited`, so
  a job can defer itself instead of holding a worker);
- `pause()` makes every worker wait when the platform itself said 429 + Retry-After;
- `usage()` reads the current use for the console.

Usage::

    limiter = RateLimiter(redis, settings)
    quota = Quota("x", calls=300, per_s=900)
    await limiter.acquire(quota, token_id="app")
    ... on 429: await limiter.pause(quota, "app", retry_after_s)

One `RateLimiter` per process is enough (it holds one connection pool for `limits`).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from engine import redis_keys
from storage.settings import Settings

APP = "app"


@dataclass(frozen=True, slots=True)
class Quota:
    platform: str
    calls: int
    per_s: int

    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.calls, self.per_s)


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    platform: str
    token_id: str
    limit: int
    per_s: int
    remaining: int
    reset_in_s: float
    paused_for_s: float

    @property
    def used(self) -> int:
        return self.limit - self.remaining


class RateLimited(Exception):
    """The quota had no room within the wait allowed: defer by `retry_in_s`."""

    def __init__(self, platform: str, retry_in_s: float) -> None:
        self.platform = platform
        self.retry_in_s = retry_in_s
        super().__init__(f"{platform} quota exhausted; retry in {retry_in_s:.1f}s")


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a redis URL (its unix-socket scheme is spelled differently)."""
    scheme, _, rest = redis_url.partition("://")
    if scheme == "unix":
        return f"async+redis+unix://{rest}"
    return f"async+{redis_url}"


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        if not settings.redis_url:
            raise RuntimeError("REDIS_URL is not set")
        self.redis = redis
        self.settings = settings
        storage = RedisStorage(
            limits_uri(settings.redis_url),
            implementation="redispy",
            key_prefix=redis_keys.quota_prefix(settings),
        )
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    def _pause_key(self, quota: Quota, token_id: str) -> str:
        return redis_keys.quota_pause_key(self.settings, quota.platform, token_id)

    async def try_acquire(self, quota: Quota, token_id: str = APP, cost: int = 1) -> float:
        """0.0 when `cost` calls were granted; else seconds to wait before asking again."""
        pause_ms = int(await self.redis.pttl(self._pause_key(quota, token_id)))
        if pause_ms > 0:
            return pause_ms / 1000
        if await self.strategy.hit(quota.item(), quota.platform, token_id, cost=cost):
            return 0.0
        # A slot frees up about every per_s/calls seconds; jitter spreads the waiting workers.
        slot = quota.per_s / max(quota.calls, 1) * cost
        return max(0.005, slot * (1 + random.random()))

    async def acquire(
        self,
        quota: Quota,
        token_id: str = APP,
        cost: int = 1,
        max_wait_s: float = 30.0,
    ) -> None:
        """Wait until the quota grants `cost` calls; RateLimited after `max_wait_s`."""
        deadline = time.monotonic() + max_wait_s
        while True:
            wait = await self.try_acquire(quota, token_id, cost)
            if wait == 0.0:
                return
            left = deadline - time.monotonic()
            if left <= 0 or wait > left:
                raise RateLimited(quota.platform, wait)
            await asyncio.sleep(wait)

    async def pause(self, quota: Quota, token_id: str, seconds: float) -> None:
        """The platform said "wait" (429 + Retry-After): every worker waits that long."""
        if seconds <= 0:
            return
        pause_key = self._pause_key(quota, token_id)
        ms = int(seconds * 1000)
        # Keep the longer of two pauses (two workers hearing different Retry-After values).
        current = int(await self.redis.pttl(pause_key))
        if current < ms:
            await self.redis.set(pause_key, "1", px=ms)

    async def usage(self, quota: Quota, token_id: str = APP) -> QuotaUsage:
        stats = await self.strategy.get_window_stats(quota.item(), quota.platform, token_id)
        pause_ms = max(int(await self.redis.pttl(self._pause_key(quota, token_id))), 0)
        return QuotaUsage(
            platform=quota.platform,
            token_id=token_id,
            limit=quota.calls,
            per_s=quota.per_s,
            remaining=int(stats.remaining),
            reset_in_s=max(stats.reset_time - time.time(), 0.0),
            paused_for_s=pause_ms / 1000,
        )

    async def close(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        storage = getattr(bridge, "storage", None)
        close = getattr(storage, "aclose", None)
        if close is not None:
            await close()
