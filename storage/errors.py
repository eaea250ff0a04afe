"""Errors that mean "the database is unreachable", as the driver and SQLAlchemy raise them.

A job that meets one of these while Postgres is down or restarting defers itself (arq Retry)
instead of failing: its work is still owed and nothing was committed. Anything else is a bug or
bad data, and fails the job where a person can see it.
"""

from __future__ import annotations

from asyncpg.exceptions import (
    OperatorInterventionError,
    PostgresConnectionError,
    TooManyConnectionsError,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# OSError: the socket (refused, reset); then what SQLAlchemy wraps asyncpg's errors in; then
# asyncpg's own, for the code that talks to it without SQLAlchemy (the api's pool, `driver`):
# a lost connection (class 08), a server shutting down or starting up (57P01-57P03), full.
DB_DOWN_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    OperationalError,
    InterfaceError,
    DBAPIError,
    PostgresConnectionError,
    OperatorInterventionError,
    TooManyConnectionsError,
)
DB_DOWN_DETAIL = "the database is unreachable for now; nothing was stored: send it again shortly"
