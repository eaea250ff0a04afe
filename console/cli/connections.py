"""`creatordeck connections …`: platform accounts and their encrypted tokens, from the shell.

`connect PLATFORM` runs the platform's OAuth flow in the terminal (over SSH, no browser on the
server): a device code to enter on any device, or (X) a URL to open and the redirect to paste
back. `add` takes a token from the environment (never from arguments, which `ps` shows).
Tokens are stored encrypted with ENCRYPTION_KEY; no command prints one.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

import click

from console.cli.preflight import cipher_or_exit, database, settings_or_exit

if TYPE_CHECKING:
    from storage.crypto import TokenCipher
    from storage.models import Platform
    from storage.settings import Settings


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

    from console.data.acting import acting
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
        async with database(settings) as db:
            # A token saved under a key other than the stored tokens' would mix keys.
            async with db.transaction() as session:
                status = await check_key(session, box)
            if not status.ok:
                raise click.ClickException(f"token not saved: {status.message}")
            async with db.transaction() as session:
                conn = await save_connection(session, box, data, await acting(session))
                return conn.id

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
    from console.data.acting import acting
    from storage.queries.key_check import Rotation, RotationRefused, rotate_tokens

    settings = settings_or_exit()
    box = cipher_or_exit(settings)

    async def rotate() -> Rotation:
        async with database(settings) as db, db.transaction() as session:
            return await rotate_tokens(session, box, await acting(session), forget_unreadable)

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
    from storage.queries.publishing import list_connections

    settings = settings_or_exit()

    async def load() -> list[str]:
        async with database(settings) as db, db.session() as session:
            rows = await list_connections(session)
        return [
            f"{c.id}\t{c.platform}\t{c.display_name}\t{c.status}\t"
            f"{c.expires_at.isoformat() if c.expires_at else '-'}"
            for c in rows
        ]

    for line in asyncio.run(load()):
        click.echo(line)


PLATFORMS = ["mock", "x", "facebook", "instagram", "youtube"]


@connections.command("connect")
@click.argument("platform", type=click.Choice(PLATFORMS))
@click.option(
    "--flow", type=click.Choice(["device", "pkce"]), default=None, help="default: the platform's"
)
@click.option("--account-id", default=None, help="which account, when the login reaches several")
@click.option("--name", "display_name", default=None, help="how the console shows it")
def connections_connect(
    platform: str, flow: str | None, account_id: str | None, display_name: str | None
) -> None:
    """Connect (or reconnect) an account with OAuth, from this terminal.

    YouTube, Facebook and Instagram: open the URL shown on any device and enter the code; this
    command waits. X: open the URL, approve, and paste back the address the browser ended on.
    Client ids and secrets come from the environment (YOUTUBE_CLIENT_ID, FACEBOOK_APP_ID, …).
    """
    from console.data.connect import CONNECT_ERRORS
    from storage.models import Platform

    settings = settings_or_exit()
    box = cipher_or_exit(settings)
    try:
        saved = asyncio.run(
            _connect(settings, box, Platform(platform), flow, account_id, display_name)
        )
    except CONNECT_ERRORS as exc:
        raise click.ClickException(_connect_error(exc)) from exc
    click.echo(saved, err=True)


def _connect_error(exc: Exception) -> str:
    from engine.oauth.device import DeviceDenied, DeviceExpired

    if isinstance(exc, DeviceDenied):
        return "the request was refused on the other device; nothing was saved"
    if isinstance(exc, DeviceExpired):
        return "the code expired before it was approved; run the command again"
    return f"not connected: {exc}"


async def _connect(
    settings: Settings,
    box: TokenCipher,
    platform: Platform,
    flow_name: str | None,
    account_id: str | None,
    display_name: str | None,
) -> str:
    import httpx

    from console.data.acting import acting_now
    from engine.oauth.flow import ConnectFlow
    from engine.oauth.providers import Flow

    oauth = settings.oauth
    async with httpx.AsyncClient(timeout=oauth.timeout_s) as http:
        flow = ConnectFlow.for_platform(platform, http, settings)
        wanted = Flow.PKCE if flow_name == "pkce" else flow.provider.flow
        if flow_name == "device" and wanted is Flow.PKCE:
            wanted = flow.provider.flow
        if wanted not in flow.flows():
            offered = ", ".join(f.value for f in flow.flows())
            raise click.ClickException(f"{platform} offers {offered}, not {flow_name}")
        if wanted is Flow.PKCE:
            start = flow.start_pkce(oauth.x_redirect_uri)
            click.echo(
                f"Open this URL in a browser, sign in and approve:\n\n  {start.url}\n", err=True
            )
            click.echo("Then paste the address the browser ended on (or just the code):", err=True)
            tokens = await flow.finish_pkce(start, sys.stdin.readline())
        else:
            grant = await flow.start_device()
            click.echo(
                f"On any device, open {grant.verification_uri} and enter the code:\n\n"
                f"  {grant.user_code}\n",
                err=True,
            )
            if grant.verification_uri_complete:
                click.echo(f"(or open {grant.verification_uri_complete})", err=True)
            click.echo(
                f"Waiting for approval (checking every {grant.interval:g} s, "
                f"for {grant.expires_in / 60:.0f} min)…",
                err=True,
            )

            def slower(interval: float) -> None:
                click.echo(f"the platform asked to slow down: every {interval:g} s now", err=True)

            tokens = await flow.finish_device(grant, on_wait=slower)
        account = await flow.account(tokens, account_id)
        async with database(settings) as db:
            connection_id = await flow.save(db, box, account, await acting_now(db), display_name)
    expiry = account.tokens.expires_at.isoformat() if account.tokens.expires_at else "never"
    refresh = "refreshed by the engine" if account.tokens.refresh_token else "no refresh token"
    return (
        f"connection {connection_id} saved ({platform} {display_name or account.display_name}, "
        f"account {account.account_id}; scopes: {account.tokens.scopes or '-'}; "
        f"expires {expiry}, {refresh})"
    )


@connections.command("refresh")
@click.argument("connection_id", type=int)
def connections_refresh(connection_id: int) -> None:
    """Refresh one connection's access token now (as the engine would before it expires)."""
    import httpx

    from engine.oauth.refresh import TokenRefresher

    settings = settings_or_exit()
    box = cipher_or_exit(settings)

    async def run() -> str:
        async with database(settings) as db, httpx.AsyncClient() as http:
            result = await TokenRefresher(db, box, http, settings).refresh(
                connection_id, wait=True, force=True
            )
        return f"connection {connection_id}: {result.outcome.value} {result.reason}".strip()

    line = asyncio.run(run())
    click.echo(line, err=True)
    if "refreshed" not in line:
        raise SystemExit(1)


@connections.group("credential")
def credential() -> None:
    """Tracking credentials (YOUTUBE_API_KEY, X_BEARER_TOKEN, INSTAGRAM_ACCESS_TOKEN,
    INSTAGRAM_USER_ID) kept encrypted in the database; the environment wins over them. Engines
    read them when they start."""


@credential.command("set")
@click.argument("name")
@click.option(
    "--value-env",
    default="CREATORDECK_SECRET",
    show_default=True,
    help="environment variable holding the value; unset: read it from stdin",
)
def credential_set(name: str, value_env: str) -> None:
    """Store one credential, encrypted (never pass it as an argument)."""
    from storage.queries.tracking_credentials import UnknownCredential, check_name

    try:
        key = check_name(name)
    except UnknownCredential as exc:
        raise click.ClickException(str(exc)) from exc
    value = os.environ.get(value_env) or sys.stdin.readline().strip()
    if not value:
        raise click.ClickException(f"no value: set {value_env} or pipe it on stdin")
    settings = settings_or_exit()
    box = cipher_or_exit(settings)

    async def save() -> None:
        from console.data.acting import acting
        from storage.queries.key_check import check_key
        from storage.queries.tracking_credentials import set_credential

        async with database(settings) as db, db.transaction() as session:
            status = await check_key(session, box)
            if not status.ok:
                raise click.ClickException(f"not saved: {status.message}")
            await set_credential(session, box, key, value, await acting(session))

    asyncio.run(save())
    click.echo(f"{key.upper()} stored encrypted; engines use it from their next start", err=True)


@credential.command("delete")
@click.argument("name")
def credential_delete(name: str) -> None:
    """Forget one stored credential."""
    from storage.queries.tracking_credentials import UnknownCredential, check_name

    try:
        key = check_name(name)
    except UnknownCredential as exc:
        raise click.ClickException(str(exc)) from exc
    settings = settings_or_exit()

    async def drop() -> bool:
        from console.data.acting import acting
        from storage.queries.tracking_credentials import delete_credential

        async with database(settings) as db, db.transaction() as session:
            return await delete_credential(session, key, await acting(session))

    click.echo(f"{key.upper()} {'deleted' if asyncio.run(drop()) else 'was not stored'}", err=True)


@credential.command("list")
def credential_list() -> None:
    """The names of the stored credentials (never their values)."""
    from storage.queries.tracking_credentials import stored_names

    settings = settings_or_exit()

    async def names() -> list[str]:
        async with database(settings) as db, db.session() as session:
            return await stored_names(session)

    for name in asyncio.run(names()):
        click.echo(name.upper())
