"""What every request handler shares: settings, the database, Redis, the definition cache.

`pool` is the api's own asyncpg pool, one of the named exceptions to the transaction rule
(storage/database.py): the request hot paths skip the ORM session and its pool checkout.
An assignment is one self-contained statement, and so is an event batch: one round trip each.

The pool's invariant, and what it buys: code on `pool` leaves no session state behind (no
plain SET, LISTEN, session advisory lock or open cursor; SET LOCAL and transactions only). So a
released connection is not reset (asyncpg's default sends `RESET ALL; UNLISTEN *; …`: one more
round trip per request); asyncpg still rolls back a transaction left open. Its sessions pin
the planner to index probes (`INDEX_PROBES_ONLY`), which the event batch needs and the
assignment statement uses anyway, so a batch needs no transaction of its own. Behind
PgBouncer (transaction mode) a session is not ours to configure: a batch sets them locally in
a transaction instead.
Everything else goes through `db` like the rest of the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import Redis
from starlette.requests import Request

from engine.alerts.event_counts import Tally
from engine.experiments.assignment import DefinitionCache
from storage.database import Database, plain_dsn
from storage.queries.experiments import INDEX_PROBES_ONLY
from storage.redis import connect as redis_connect
from storage.settings import Settings


@dataclass
class ApiContext:
    settings: Settings
    db: Database
    pool: asyncpg.Pool
    redis: Redis
    definitions: DefinitionCache
    # The pool's sessions have INDEX_PROBES_ONLY set (see the module's docstring); a pool
    # made elsewhere (tests) is not assumed to.
    session_pinned: bool = False
    # The event batches' accepted/refused figures for the console, written once a second.
    tally: Tally = field(init=False)

    def __post_init__(self) -> None:
        self.tally = Tally(self.redis, self.settings)

    @classmethod
    async def open(cls, settings: Settings) -> ApiContext:
        db = Database(settings)
        # The hot paths (assignment, event batches) talk asyncpg directly: one round trip each.
        statement_cache = 0 if settings.pgbouncer else 100
        server_settings = {"application_name": "creatordeck-api"}
        if not settings.pgbouncer:
            server_settings.update(INDEX_PROBES_ONLY)
        pool = await asyncpg.create_pool(
            plain_dsn(settings.database_url or ""),
            min_size=1,
            max_size=settings.db_pool_size,
            statement_cache_size=statement_cache,
            server_settings=server_settings,
            reset=_keep_session,
        )
        return cls(
            settings,
            db,
            pool,
            redis_connect(settings),
            DefinitionCache(db),
            session_pinned=not settings.pgbouncer,
        )

    async def close(self) -> None:
        await self.tally.close()
        await self.pool.close()
        await self.db.dispose()
        await self.redis.aclose()


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's reset: nothing to undo (the module's invariant), so no round trip."""


async def context(request: Request) -> ApiContext:
    # async: FastAPI runs a plain `def` dependency in its thread pool (a thread hop per request)
    ctx: ApiContext = request.app.state.ctx
    return ctx
