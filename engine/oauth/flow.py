"""One connect attempt, as the CLI and the console's modal run it: start (device code or PKCE
URL), finish (poll, or the pasted redirect), find the account, save it encrypted.

A front end shows `DeviceGrant.verification_uri` + `user_code` (device) or `PkceStart.url`
(PKCE) and calls the matching `finish_*`; nothing here prints or reads a terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from engine.oauth import device, pkce
from engine.oauth.connect import Account, identify, long_lived
from engine.oauth.device import DeviceGrant, Sleep
from engine.oauth.pkce import PkceStart
from engine.oauth.providers import Client, Flow, Provider, client_for, provider_for
from engine.oauth.tokens import TokenSet
from storage.clock import Clock, utc_now
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import Platform
from storage.permissions import Actor
from storage.queries.key_check import check_key
from storage.queries.oauth_tokens import NewTokens, save_connected
from storage.settings import Settings
from storage.user_error import UserError


class KeyRefused(RuntimeError, UserError):
    """ENCRYPTION_KEY cannot read the tokens already stored: saving would mix keys."""

    title = "token not saved"


@dataclass
class ConnectFlow:
    platform: Platform
    provider: Provider
    app: Client = field(repr=False)
    http: httpx.AsyncClient = field(repr=False)
    clock: Clock = utc_now

    @classmethod
    def for_platform(
        cls,
        platform: Platform,
        http: httpx.AsyncClient,
        settings: Settings,
        clock: Clock = utc_now,
    ) -> ConnectFlow:
        """OAuthConfigError when this deployment has no client for the platform."""
        return cls(
            platform,
            provider_for(platform, settings),
            client_for(platform, settings.oauth),
            http,
            clock,
        )

    def flows(self) -> tuple[Flow, ...]:
        return self.provider.flows

    async def start_device(self) -> DeviceGrant:
        return await device.start(self.http, self.provider, self.app)

    async def finish_device(
        self,
        grant: DeviceGrant,
        sleep: Sleep | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> TokenSet:
        return await device.poll(
            self.http,
            self.provider,
            self.app,
            grant,
            sleep=sleep or asyncio.sleep,
            now=self.clock,
            on_wait=on_wait,
        )

    def start_pkce(self, redirect_uri: str) -> PkceStart:
        return pkce.begin(self.provider, self.app, redirect_uri)

    async def finish_pkce(self, start: PkceStart, pasted: str) -> TokenSet:
        """PasteError for a paste that is not this attempt's redirect or code."""
        code = pkce.code_from(pasted, start)
        return await pkce.finish(self.http, self.provider, self.app, start, code, self.clock())

    async def account(self, tokens: TokenSet, choose: str | None = None) -> Account:
        lasting = await long_lived(self.http, self.provider, self.app, tokens, self.clock())
        exchanged = lasting is not tokens
        return await identify(self.http, self.provider, lasting, choose, exchanged)

    async def save(
        self,
        db: Database,
        box: TokenCipher,
        account: Account,
        actor: Actor,
        name: str | None = None,
    ) -> int:
        """Store the connection (tokens encrypted, scopes, expiry) in one transaction."""
        tokens = account.tokens
        async with db.transaction() as session:
            status = await check_key(session, box)
            if not status.ok:
                raise KeyRefused(f"tokens not saved: {status.message}")
            return await save_connected(
                session,
                box,
                platform=self.platform.value,
                account_id=account.account_id,
                display_name=name or account.display_name,
                tokens=NewTokens(
                    tokens.access_token, tokens.refresh_token, tokens.expires_at, tokens.scopes
                ),
                actor=actor,
            )
