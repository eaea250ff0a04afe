"""The async engine, sessions, and Postgres LISTEN for change notifications.

The transaction rule: query functions (storage/queries) never commit; the caller owns the
transaction and opens it with `Database.transaction()` around what must be atomic (an edit
and its audit row, a fetch batch and its ledger counts). `Database.session()` is for reads:
it is rolled back when it closes, so a write through it is lost, never half-kept.

Named exceptions, all listed here and nowhere else:

- `Database.autocommit()`: each statement commits on its own, with no BEGIN/COMMIT round
  trips. Only for hot paths made of single, self-contained statements, where one statement
  is the whole unit of atomicity; the modules allowed to use it are `AUTOCOMMIT_CALLERS`
  (tests/storage/test_transaction_rule.py fails on any other):
    - engine/jobs/tick.py: a tick shard reads its regions, claims them (`claim_many`, one
      INSERT … ON CONFLICT for the whole shard), records skipped/missed fires and fails runs:
      each one statement that is correct alone, on the engine's hottest path (every fire
      time of every shard; bench/tick_lag.py measures it).
    - engine/jobs/refresh.py: the fan-out reads the due creators of claimed runs and records
      each run's batch count (`fan_out`, one UPDATE): again one statement per step.
    - engine/scheduler.py (`sweep_ledger`): each repair of the ledger is a plain read and
      one UPDATE that re-checks the read's condition, so it is safe alone and to repeat (it
      runs every sweep; the common case, nothing to repair, takes no row lock).
- `publishing.autocommit(engine)` (storage/queries/publishing.py): the publish job's claim
  and finish, each one committed statement before/after a request leaves (that module's
  docstring says why; branch publish-batch owns it).
- `driver(session)`: the raw asyncpg connection under a session, for batched array-parameter
  statements on the fetch path and for big console reads. It is not a way around the rule:
  it runs on the session's own connection, inside whatever transaction the caller opened.
- The api's own asyncpg pool (engine/api/context.py): the request hot paths (an assignment
  is one statement, an event batch one short transaction of its own); its docstring says why
  it stays.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.settings import Settings

REGIONS_CHANNEL = "creatordeck_regions"


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as Heroku-style hosts and pgserver hand them out)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def plain_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg understands (no `+asyncpg`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(settings: Settings, url: str | None = None, **kwargs: Any) -> AsyncEngine:
    target = url or settings.database_url
    if target is None:
        raise RuntimeError("DATABASE_URL is not set and no embedded server was started")
    connect_args: dict[str, Any] = {"server_settings": {"application_name": "creatordeck"}}
    if settings.pgbouncer:
        # PgBouncer in transaction mode cannot keep prepared statements across transactions.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
    kwargs.setdefault("pool_size", settings.db_pool_size)
    kwargs.setdefault("max_overflow", settings.db_pool_size)
    # No pre-ping: it costs a round trip per checkout on the hot path; a connection broken by a
    # Postgres restart fails its statement, is discarded, and the caller's retry gets a new one.
    return create_async_engine(async_url(target), connect_args=connect_args, **kwargs)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def listen(
    url: str, channel: str, on_notify: Callable[[str], None]
) -> AsyncIterator[asyncio.Event]:
    """Call `on_notify(payload)` for each NOTIFY on `channel` while the context is open.

    Yields an event that is set when the connection is lost (the server restarted, say).
    """
    conn = await asyncpg.connect(plain_dsn(url))
    lost = asyncio.Event()

    def _callback(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        on_notify(str(payload))

    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(channel, _callback)
    try:
        yield lost
    finally:
        try:
            await asyncio.wait_for(conn.close(), timeout=2)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            conn.terminate()


# The modules that may call `Database.autocommit()` (see the module docstring for why each).
AUTOCOMMIT_CALLERS = (
    "engine/jobs/tick.py",
    "engine/jobs/refresh.py",
    "engine/scheduler.py",
)


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under `session`, in the session's transaction (it begins one if
    none is open, like any statement). For statements that send whole arrays as one parameter
    or read many rows without ORM processing; commit stays with whoever owns the session."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    found: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return found


class Database:
    """One engine and its sessions, for the lifetime of a process."""

    def __init__(self, settings: Settings, url: str | None = None, **engine_kwargs: Any) -> None:
        self.url = url or settings.database_url or ""
        self.engine = create_engine(settings, self.url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine)
        self.autocommit_sessions = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    def session(self) -> AsyncSession:
        """A session for reads. Closing it rolls back: writes go through `transaction()`."""
        return self.sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed when the block ends, rolled back if it
        raises. Everything written through the session is atomic."""
        async with self.sessions() as session, session.begin():
            yield session

    def autocommit(self) -> AsyncSession:
        """A session whose statements commit one by one: no BEGIN/COMMIT round trips.

        Only for the hot paths of single, self-contained statements named in this module's
        docstring (`AUTOCOMMIT_CALLERS`).
        """
        return self.autocommit_sessions()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
