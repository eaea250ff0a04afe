"""Short Redis locks with an owner token, so a dead worker's lock expires on its own."""

from __future__ import annotations

from redis.asyncio import Redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class OwnedLock:
    def __init__(self, redis: Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms

    async def acquire(self) -> bool:
        """True when the lock is now ours (or was already: a re-run of the same job)."""
        if await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        holder = await self.redis.get(self.key)
        return holder is not None and holder.decode() == self.owner

    async def holder(self) -> str | None:
        raw = await self.redis.get(self.key)
        return raw.decode() if raw else None

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.owner)  # type: ignore[misc]
