"""Errors that mean "the database is unreachable", as the driver and SQLAlchemy raise them.

A job that meets one of these while Postgres is down or restarting defers itself (arq Retry)
instead of failing: its work is still owed and nothing was committed. Anything else is a bug or
bad data, and fails the job where a person can see it.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# OSError: the socket (refused, reset); the rest: what SQLAlchemy wraps asyncpg's errors in.
DB_DOWN_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    OperationalError,
    InterfaceError,
    DBAPIError,
)
