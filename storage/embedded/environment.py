"""Resolve where Postgres and Redis are: the URLs given, or the embedded servers in DATA_DIR.

A process that uses the embedded servers holds a lease on them (storage.embedded.leases) until it
calls `release()` or exits; the last process out stops them, the others say who still uses them.
"""

from __future__ import annotations

import atexit
import sys

from storage.embedded.servers import EmbeddedServers, Release, data_dir
from storage.settings import EnvMode, Settings, get_settings

_servers: EmbeddedServers | None = None


class EnvironmentError_(RuntimeError):
    pass


def resolve(settings: Settings | None = None) -> Settings:
    """Settings with both URLs set; starts (or joins) the embedded servers for what is unset."""
    global _servers
    settings = settings or get_settings()
    if settings.database_url and settings.redis_url:
        return settings
    if settings.env == EnvMode.PROD:
        missing = [
            n
            for n, v in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url))
            if not v
        ]
        raise EnvironmentError_(f"{' and '.join(missing)} must be set when ENV=prod")
    servers = EmbeddedServers(data_dir(settings.data_dir)).start(
        need_postgres=not settings.database_url, need_redis=not settings.redis_url
    )
    if _servers is None:
        atexit.register(_release_at_exit)
    else:
        release()  # resolved twice in one process: keep one lease
    _servers = servers
    servers.export()
    return settings.model_copy(
        update={
            "database_url": settings.database_url or servers.database_url,
            "redis_url": settings.redis_url or servers.redis_url,
        }
    )


def release() -> str | None:
    """Give back this process's lease on the embedded servers (stopping them if it was the last
    user); what happened, in words, or None when this process used no embedded server."""
    global _servers
    servers, _servers = _servers, None
    if servers is None:
        return None
    outcome: Release | None = servers.stop()
    return None if outcome is None else outcome.describe(servers.folder)


def _release_at_exit() -> None:
    message = release()
    if message:
        print(f"creatordeck: {message}", file=sys.stderr)
