"""Who is acting in this process, and as which operator (storage.permissions enforces it).

`current_actor()` is what the process knows: the OS user of a local console or of the CLI, or,
in a console that `--serve-ssh` started, the key's name and its `operator=` option and whether
the key is read-only (console.ssh.session). `acting` asks the database which operator that is,
inside the edit's own transaction, so a role change applies to the very next edit.
"""

from __future__ import annotations

import os

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from console.ssh.session import Session
from storage.database import Database
from storage.permissions import Operator
from storage.queries import audit, operators
from storage.queries.operators import Identity as Identity  # for screens' annotations


def current_actor() -> Identity:
    """This process's identity (cheap: the environment and the OS user)."""
    login = audit.current_actor()  # over SSH the server sets USER to "ssh:<key name>"
    session = Session.from_env(os.environ)
    if session.over_ssh:
        return Identity(login, operator=session.operator, read_only=session.ssh_read_only)
    return Identity(login, os_user=login)


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
