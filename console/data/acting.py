"""Who is acting in this process, and as which operator (storage.permissions enforces it).

`current_actor()` is what the process knows: the OS user of a local console or of the CLI, or,
in a console that `--serve-ssh` started, the key's name and its `operator=` option and whether
the key is read-only (console.ssh.session). `acting` asks the database which operator that is,
inside the edit's own transaction, so a role change applies to the very next edit.

A console started with `--read-only` says so with `serve_read_only` (the app does, first thing
in its own task): its identity is then read-only, and storage resolves it to a viewer exactly as
it does a read-only SSH key, so a screen that forgot to refuse is still refused where the edit
is written. It is a context variable, not a global: the app's screens and workers inherit it
from the app's task, and nothing outside that task (the CLI, another app in a test) sees it.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from console.ssh.session import Session
from storage.database import Database
from storage.permissions import Operator
from storage.queries import audit, operators
from storage.queries.operators import Identity as Identity  # for screens' annotations

_read_only: ContextVar[bool] = ContextVar("creatordeck_read_only", default=False)


def serve_read_only(read_only: bool) -> None:
    """Whether the console being built (and everything it runs) is read-only (`--read-only`)."""
    _read_only.set(read_only)


def current_actor() -> Identity:
    """This process's identity (cheap: the environment and the OS user)."""
    login = audit.current_actor()  # over SSH the server sets USER to "ssh:<key name>"
    session = Session.from_env(os.environ)
    read_only = _read_only.get()
    if session.over_ssh:
        return Identity(
            login, operator=session.operator, read_only=session.ssh_read_only or read_only
        )
    return Identity(login, os_user=login, read_only=read_only)


async def acting(session: AsyncSession, who: Identity | None = None) -> Operator:
    """The operator `who` (default: this process) is, read in `session`'s transaction."""
    return await operators.resolve(session, who or current_actor())


async def acting_now(db: Database, who: Identity | None = None) -> Operator:
    """`acting` in a short transaction of its own, for an edit whose transaction is opened
    further down (engine.dead_letters, engine.oauth.flow): the role read just before."""
    async with db.transaction() as session:
        return await acting(session, who)


async def header_label(db: Database) -> str | None:
    """ "name (role)" for the console's header once operators exist; None before (the console
    looks as it did before roles) or when the database cannot say (the header is no place
    for that error: the screens report the store)."""
    from sqlalchemy import select

    from storage.models import Operator as OperatorRow
    from storage.user_error import UserError

    try:
        async with db.transaction() as session:
            if await session.scalar(select(OperatorRow.id).limit(1)) is None:
                return None
            operator = await acting(session)
    except (UserError, OSError, SQLAlchemyError):
        return None
    return f"{operator.name} ({operator.role})"
