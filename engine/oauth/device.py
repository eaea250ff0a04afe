"""The device authorization grant (RFC 8628), and Facebook Login for Devices (the same flow in
Facebook's words): show a URL and a code, poll until the person approves it elsewhere.

Polling waits `interval` seconds between requests (5 when the server names none) and five more
after every `slow_down` (RFC 8628 section 3.5), and stops at the code's expiry. Facebook says
the same things with error subcodes (`FACEBOOK_*` below). Time comes from the caller's `sleep`
and `clock`, so a test runs the flow without waiting in real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from engine.oauth.providers import Client, Flow, Provider
from engine.oauth.tokens import (
    OAuthError,
    OAuthUnavailable,
    TokenSet,
    client_auth,
    parse_tokens,
    post_form,
)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL_S = 5.0
SLOW_DOWN_S = 5.0
# Facebook Login for Devices: login_status error subcodes.
FACEBOOK_PENDING = 1349174
FACEBOOK_SLOW_DOWN = 1349172
FACEBOOK_EXPIRED = 1349152


class DeviceDenied(OAuthError):
    """The person refused the request (access_denied)."""


class DeviceExpired(OAuthError):
    """The code expired before anybody approved it (expired_token): start again."""


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


async def start(http: httpx.AsyncClient, provider: Provider, app: Client) -> DeviceGrant:
    """Ask for a device code and a user code (no token yet)."""
    if provider.device_url is None:
        raise OAuthError("unsupported_grant_type", f"{provider.platform} has no device flow")
    if Flow.FACEBOOK_DEVICE in provider.flows:
        form = {"access_token": f"{app.id}|{app.client_token}", "scope": ",".join(provider.scopes)}
        body = await post_form(http, provider.device_url, form)
        code_key, uri_key = "code", "verification_uri"
    else:
        form, auth = client_auth(provider, app, {"scope": " ".join(provider.scopes)})
        body = await post_form(http, provider.device_url, form, auth)
        code_key = "device_code"
        # Google says verification_url; RFC 8628 says verification_uri.
        uri_key = "verification_uri" if "verification_uri" in body else "verification_url"
    try:
        return DeviceGrant(
            device_code=str(body[code_key]),
            user_code=str(body["user_code"]),
            verification_uri=str(body[uri_key]),
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=float(body.get("expires_in") or 600),
            interval=float(body.get("interval") or DEFAULT_INTERVAL_S),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OAuthUnavailable(f"the device authorization answer lacks {exc}") from exc


Sleep = Callable[[float], Awaitable[None]]


async def poll(
    http: httpx.AsyncClient,
    provider: Provider,
    app: Client,
    grant: DeviceGrant,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_wait: Callable[[float], None] | None = None,
) -> TokenSet:
    """Poll until approved (tokens), refused (DeviceDenied) or expired (DeviceExpired)."""
    interval = grant.interval
    deadline = clock() + grant.expires_in
    while True:
        if clock() + interval > deadline:
            raise DeviceExpired("expired_token", "the code expired before it was approved")
        await sleep(interval)
        try:
            return await _ask(http, provider, app, grant, now())
        except OAuthError as exc:
            kind = _kind(exc)
            if kind == "authorization_pending":
                continue
            if kind == "slow_down":
                interval += SLOW_DOWN_S
                if on_wait is not None:
                    on_wait(interval)
                continue
            if kind == "access_denied":
                raise DeviceDenied(exc.error, exc.description or "the request was refused") from exc
            if kind == "expired_token":
                raise DeviceExpired(exc.error, exc.description or "the code expired") from exc
            raise


async def _ask(
    http: httpx.AsyncClient, provider: Provider, app: Client, grant: DeviceGrant, now: datetime
) -> TokenSet:
    if Flow.FACEBOOK_DEVICE in provider.flows and provider.device_status_url:
        form = {"access_token": f"{app.id}|{app.client_token}", "code": grant.device_code}
        body = await post_form(http, provider.device_status_url, form)
    else:
        form, auth = client_auth(
            provider, app, {"grant_type": DEVICE_GRANT, "device_code": grant.device_code}
        )
        body = await post_form(http, provider.token_url, form, auth)
    return parse_tokens(body, now, " ".join(provider.scopes))


def _kind(exc: OAuthError) -> str:
    """RFC 8628's error word for an RFC or a Facebook answer."""
    if exc.error.startswith("facebook_"):
        subcode = exc.error.rsplit("_", 1)[-1]
        return {
            str(FACEBOOK_PENDING): "authorization_pending",
            str(FACEBOOK_SLOW_DOWN): "slow_down",
            str(FACEBOOK_EXPIRED): "expired_token",
        }.get(subcode, exc.error)
    return exc.error
