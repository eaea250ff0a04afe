"""`creatordeck connections …`: platform accounts and their encrypted tokens, from the shell.

Tokens are read from the environment (never from arguments, which `ps` shows) and stored
encrypted with ENCRYPTION_KEY; no command prints one.
"""

from __future__ import annotations

import asyncio
import os
import sys

import click

from console.cli_support import cipher_or_exit, settings_or_exit


@click.group()
def connections() -> None:
    """Platform accounts posts are published to (tokens encrypted with ENCRYPTION_KEY)."""


@connections.command("add")
@click.option(
    "--platform",
    type=click.Choice(["mock", "x", "facebook", "instagram", "youtube"]),
    required=True,
)
@click.option("--account-id", required=True, help="the platform's id of the account or page")
@click.option("--name", "display_name", required=True, help="how the console shows it")
@click.option("--expires", default=None, help="token expiry, ISO 8601 with offset")
@click.option(
    "--token-env",
    default="CREATORDECK_TOKEN",
    show_default=True,
    help="environment variable holding the token; unset: read it from stdin",
)
def connections_add(
    platform: str, account_id: str, display_name: str, expires: str | None, token_env: str
) -> None:
    """Add an account, or re-authorise it with a new token (never pass tokens as arguments)."""
    from datetime import datetime

    from pydantic import ValidationError

    from storage.database import Database
    from storage.queries.audit import current_actor
    from storage.queries.key_check import check_key
    from storage.queries.publishing import ConnectionInput, save_connection

    token = os.environ.get(token_env) or sys.stdin.readline().strip()
    try:
        data = ConnectionInput(
            platform=platform,
            account_id=account_id,
            display_name=display_name,
            token=token,
            refresh_token=os.environ.get("CREATORDECK_REFRESH_TOKEN") or None,
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )
    except (ValidationError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    settings = settings_or_exit()
    box = cipher_or_exit(settings)

    async def save() -> int:
        db = Database(settings)
        try:
            # A token saved under a key other than the stored tokens' would mix keys.
            async with db.transaction() as session:
                status = await check_key(session, box)
            if not status.ok:
                raise click.ClickException(f"token not saved: {status.message}")
            async with db.session() as session, session.begin():
                conn = await save_connection(session, box, data, current_actor())
                return conn.id
        finally:
            await db.dispose()

    click.echo(f"connection {asyncio.run(save())} saved ({platform} {display_name})", err=True)


@connections.command("rotate-key")
@click.option(
    "--forget-unreadable",
    is_flag=True,
    help="the old key is lost: mark accounts whose tokens no key reads for reconnection",
)
def connections_rotate_key(forget_unreadable: bool) -> None:
    """Re-encrypt every stored token under the first key of ENCRYPTION_KEY=new,old.

    All tokens and the key check are rewritten in one transaction; if any token decrypts with
    none of the given keys, nothing is written (exit 1). Afterwards ENCRYPTION_KEY=new alone
    reads everything.
    """
    from storage.database import Database
    from storage.queries.audit import current_actor
    from storage.queries.key_check import Rotation, RotationRefused, rotate_tokens

    settings = settings_or_exit()
    box = cipher_or_exit(settings)

    async def rotate() -> Rotation:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                return await rotate_tokens(session, box, current_actor(), forget_unreadable)
        finally:
            await db.dispose()

    try:
        done = asyncio.run(rotate())
    except RotationRefused as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"rotated {done.tokens} token(s) of {done.connections} connection(s) to the first key "
        "of ENCRYPTION_KEY; the other keys can now be dropped from it",
        err=True,
    )
    if done.forgotten:
        click.echo(
            f"{done.forgotten} connection(s) need reconnecting (`creatordeck connections add`)",
            err=True,
        )


@connections.command("list")
def connections_list() -> None:
    """Connected accounts: id, platform, name, status, expiry (never the tokens)."""
    from storage.database import Database
    from storage.queries.publishing import list_connections

    settings = settings_or_exit()

    async def load() -> list[str]:
        db = Database(settings)
        try:
            async with db.session() as session:
                rows = await list_connections(session)
        finally:
            await db.dispose()
        return [
            f"{c.id}\t{c.platform}\t{c.display_name}\t{c.status}\t"
            f"{c.expires_at.isoformat() if c.expires_at else '-'}"
            for c in rows
        ]

    for line in asyncio.run(load()):
        click.echo(line)
