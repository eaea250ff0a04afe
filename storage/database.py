"""The async engine, sessions, and Postgres LISTEN for change notifications."""

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
        return self.sessions()

    def autocommit(self) -> AsyncSession:
        """A session whose statements commit one by one: no BEGIN/COMMIT round trips.

        For hot paths made of single, self-contained statements (a claim, a finish).
        """
        return self.autocommit_sessions()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
