"""What every `creatordeck` command needs before it starts: the settings, checked.

A bad setting, a key that cannot read the stored key check, or an edit refused (a UserError
inside `database`) is a one-line error (a
`click.ClickException`), never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import click

from storage.settings import Settings, get_settings

if TYPE_CHECKING:  # the CLI imports cryptography only when a command needs it
    from storage.crypto import TokenCipher
    from storage.database import Database


def settings_or_exit(start_embedded: bool = True):  # type: ignore[no-untyped-def]
    from storage.embedded.environment import EnvironmentError_, resolve

    settings = plain_settings()  # a bad value is a one-line error here too, not a traceback
    try:
        return resolve(settings) if start_embedded else settings
    except EnvironmentError_ as exc:
        raise click.ClickException(str(exc)) from exc


def plain_settings() -> Settings:
    """The settings as configured (nothing started); a bad value is a one-line error."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("bad setting: " + "; ".join(lines)) from exc


def check_encryption_key(settings: Settings) -> None:
    """The console's start-up check: under ENV=prod, exit 1 when ENCRYPTION_KEY cannot read the
    stored key check; in dev and test, warn and go on (publishing defers meanwhile)."""
    from storage.database import Database
    from storage.queries.key_check import KeyCheckFailed, KeyStatus, startup_check

    async def check() -> KeyStatus:
        db = Database(settings)
        try:
            return await startup_check(db, settings)
        finally:
            await db.dispose()

    try:
        status = asyncio.run(check())
    except KeyCheckFailed as exc:
        raise click.ClickException(str(exc)) from exc
    if not status.ok:
        click.secho(f"warning: {status.message} Publishing defers meanwhile.", fg="red", err=True)


def cipher_or_exit(settings: Settings) -> TokenCipher:
    """The token cipher of ENCRYPTION_KEY; a missing or malformed key is a one-line error."""
    from storage.crypto import EncryptionKeyError, cipher

    try:
        return cipher(settings)
    except EncryptionKeyError as exc:
        raise click.ClickException(str(exc)) from exc


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The database for one command, its pool closed when the command is done."""
    from storage.database import Database
    from storage.user_error import UserError

    db = Database(settings)
    try:
        yield db
    except UserError as exc:  # a refusal (e.g. storage.permissions), said in one line
        raise click.ClickException(str(exc)) from exc
    finally:
        await db.dispose()
