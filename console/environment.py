"""Resolve where Postgres and Redis are: the URLs given, or the embedded servers in DATA_DIR."""

from __future__ import annotations

import atexit

from storage.embedded import EmbeddedServers, data_dir
from storage.settings import EnvMode, Settings, get_settings


class EnvironmentError_(RuntimeError):
    pass


def resolve(settings: Settings | None = None) -> Settings:
    """Settings with both URLs set; starts (or joins) the embedded servers for what is unset."""
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
    atexit.register(servers.stop)
    servers.export()
    return settings.model_copy(
        update={
            "database_url": settings.database_url or servers.database_url,
            "redis_url": settings.redis_url or servers.redis_url,
        }
    )
