"""The Redis connection every process shares, and the key namespace of this deployment."""

from __future__ import annotations

from redis.asyncio import Redis

from storage.settings import Settings


def connect(settings: Settings, url: str | None = None) -> Redis:
    target = url or settings.redis_url
    if target is None:
        raise RuntimeError("REDIS_URL is not set and no embedded server was started")
    client: Redis = Redis.from_url(target, socket_timeout=5, socket_connect_timeout=5)
    return client


def key(settings: Settings, *parts: str) -> str:
    """A key inside this deployment's namespace: `{prefix}:{part}:{part}`."""
    return ":".join((settings.redis_prefix, *parts))
