"""What every request handler shares: settings, the database, Redis, the definition cache.

`pool` is the api's own asyncpg pool, one of the named exceptions to the transaction rule
(storage/database.py): the request hot paths skip the ORM session and its pool checkout.
An assignment is one self-contained statement (one round trip); an event batch opens one
short transaction of its own on the connection (storage/queries/experiments.insert_events).
Everything else goes through `db` like the rest of the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from starlette.requests import Request

from engine.experiments.assignment import DefinitionCache
from storage.database import Database, plain_dsn
from storage.redis import connect as redis_connect
from storage.settings import Settings


@dataclass
class ApiContext:
    settings: Settings
    db: Database
    pool: asyncpg.Pool
    redis: Redis
    definitions: DefinitionCache

    @classmethod
    async def open(cls, settings: Settings) -> ApiContext:
        db = Database(settings)
        # The hot paths (assignment, event batches) talk asyncpg directly: one round trip each.
        statement_cache = 0 if settings.pgbouncer else 100
        pool = await asyncpg.create_pool(
            plain_dsn(settings.database_url or ""),
            min_size=1,
            max_size=settings.db_pool_size,
            statement_cache_size=statement_cache,
            server_settings={"application_name": "creatordeck-api"},
        )
        return cls(settings, db, pool, redis_connect(settings), DefinitionCache(db))

    async def close(self) -> None:
        await self.pool.close()
        await self.db.dispose()
        await self.redis.aclose()


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
