"""Token endpoint calls (code exchange, refresh, revoke) and what their answers mean.

Errors are typed by what the caller must do: `GrantRefused` (the grant or refresh token is
dead: reconnect), `OAuthUnavailable` (did not reach the platform, or it failed: try later),
`OAuthError` (any other refusal, with the platform's words). No message carries a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from engine.oauth.providers import Client, Provider
from storage.user_error import UserError

# Refusals that mean "this grant will never work again" (RFC 6749 section 5.2).
ACCEPT_JSON = {"Accept": "application/json"}
DEAD_GRANT = frozenset({"invalid_grant", "unauthorized_client", "invalid_client"})


class OAuthError(RuntimeError, UserError):
    """The platform refused: `error` is its code (RFC 6749 / 8628), the message its words."""

    title = "the platform refused"

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}" if description else error)


class GrantRefused(OAuthError):
    """invalid_grant and kin: the refresh token (or code) is dead; only a reconnect helps."""


class OAuthUnavailable(RuntimeError, UserError):
    """No usable answer (network error, timeout, 5xx, not JSON): nothing changed, try later."""

    title = "platform unreachable"


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    scopes: str | None = None


def parse_tokens(body: dict[str, Any], now: datetime, scopes: str | None = None) -> TokenSet:
    """A token endpoint's success answer (`expires_in` seconds from `now`)."""
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthUnavailable("the token endpoint answered without an access_token")
    expires_in = body.get("expires_in")
    expires_at = None
    numeric = isinstance(expires_in, str) and expires_in.isdigit()
    if isinstance(expires_in, int | float) or numeric:
        seconds = float(str(expires_in))
        expires_at = now + timedelta(seconds=seconds) if seconds > 0 else None
    refresh = body.get("refresh_token")
    granted = body.get("scope")
    return TokenSet(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        scopes=" ".join(str(granted).replace(",", " ").split()) if granted else scopes,
    )


def error_of(response: httpx.Response) -> OAuthError | OAuthUnavailable:
    """What an unsuccessful answer means (RFC 6749's JSON error, or Facebook's)."""
    if response.status_code >= 500:
        return OAuthUnavailable(f"the platform answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return OAuthUnavailable(f"HTTP {response.status_code} without a JSON error")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # Facebook: {"error": {"message", "code", "error_subcode"}}
        code = f"facebook_{error.get('code')}_{error.get('error_subcode') or 0}"
        return OAuthError(code, str(error.get("message") or ""), response.status_code)
    if not isinstance(error, str):
        return OAuthUnavailable(f"HTTP {response.status_code} without an OAuth error")
    description = str(body.get("error_description") or "")
    kind = GrantRefused if error in DEAD_GRANT else OAuthError
    return kind(error, description, response.status_code)


async def post_form(
    http: httpx.AsyncClient, url: str, form: dict[str, str], auth: tuple[str, str] | None = None
) -> dict[str, Any]:
    """POST a form, answer the JSON body of a 2xx; raise OAuthError / OAuthUnavailable."""
    try:
        response = await http.post(
            url, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT, headers=ACCEPT_JSON
        )
    except httpx.HTTPError as exc:
        raise OAuthUnavailable(f"{type(exc).__name__} talking to the platform") from exc
    if response.status_code >= 300:
        raise error_of(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise OAuthUnavailable("the platform answered something that is not JSON") from exc
    if not isinstance(body, dict):
        raise OAuthUnavailable("the platform answered a JSON value that is not an object")
    return body


def client_auth(
    provider: Provider, app: Client, form: dict[str, str]
) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The form with the client's credentials, or HTTP Basic where the platform wants it."""
    if provider.basic_auth and app.secret:
        return form, (app.id, app.secret)
    extra = {"client_id": app.id}
    if app.secret:
        extra["client_secret"] = app.secret
    return {**form, **extra}, None


async def token_request(
    http: httpx.AsyncClient, provider: Provider, app: Client, form: dict[str, str], now: datetime
) -> TokenSet:
    data, auth = client_auth(provider, app, form)
    body = await post_form(http, provider.token_url, data, auth)
    return parse_tokens(body, now, " ".join(provider.scopes))


async def refresh(
    http: httpx.AsyncClient, provider: Provider, app: Client, refresh_token: str, now: datetime
) -> TokenSet:
    """A new access token; the refresh token is the new one when the platform rotates it, else
    the one sent (a platform that does not rotate answers none)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    tokens = await token_request(http, provider, app, form, now)
    if tokens.refresh_token is None:
        return TokenSet(tokens.access_token, refresh_token, tokens.expires_at, tokens.scopes)
    return tokens


async def revoke(http: httpx.AsyncClient, provider: Provider, app: Client, token: str) -> bool:
    """Ask the platform to revoke `token`; False when it has no revocation endpoint."""
    if provider.revoke_url is None:
        return False
    data, auth = client_auth(provider, app, {"token": token})
    await post_form(http, provider.revoke_url, data, auth)
    return True
