"""A finished grant becomes a stored connection: who the token belongs to, then one encrypted
upsert (storage.queries.oauth_tokens.save_connected) in the caller's transaction.

Facebook and Instagram: the device login's user token is first exchanged for a long-lived one
(when FACEBOOK_APP_SECRET is set), then the Page's own token is what gets stored: Page tokens
made from a long-lived user token do not expire, so those connections need no refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from engine.oauth.providers import Client, Identity, Provider
from engine.oauth.tokens import ACCEPT_JSON, OAuthError, OAuthUnavailable, TokenSet, error_of
from storage.user_error import UserError


class AccountChoiceError(ValueError, UserError):
    """The token reaches several accounts (or none) and the choice is the operator's."""

    title = "pick an account"


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    display_name: str
    tokens: TokenSet


async def _get(http: httpx.AsyncClient, url: str, token: str | None = None, **params: str) -> Any:
    headers = {**ACCEPT_JSON, **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        response = await http.get(url, params=params or None, headers=headers)
    except httpx.HTTPError as exc:
        raise OAuthUnavailable(f"{type(exc).__name__} talking to the platform") from exc
    if response.status_code >= 300:
        raise error_of(response)
    try:
        return response.json()
    except ValueError as exc:
        raise OAuthUnavailable("the platform answered something that is not JSON") from exc


async def long_lived(
    http: httpx.AsyncClient, provider: Provider, app: Client, tokens: TokenSet, now: datetime
) -> TokenSet:
    """Facebook: swap a short-lived user token for a long-lived one (needs the app secret)."""
    if provider.exchange_url is None or not app.secret:
        return tokens
    body = await _get(
        http,
        provider.exchange_url,
        grant_type="fb_exchange_token",
        client_id=app.id,
        client_secret=app.secret,
        fb_exchange_token=tokens.access_token,
    )
    access = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access, str):
        raise OAuthUnavailable("the long-lived token exchange answered no access_token")
    seconds = body.get("expires_in")
    expires = now + timedelta(seconds=float(seconds)) if isinstance(seconds, int | float) else None
    return TokenSet(access, None, expires, tokens.scopes)


def _pick(pages: list[dict[str, Any]], choose: str | None, key: str) -> dict[str, Any]:
    ids = [str((p.get(key) or {}).get("id") if key else p.get("id")) for p in pages]
    if choose is not None:
        for page, found in zip(pages, ids, strict=True):
            if found == choose:
                return page
        raise AccountChoiceError(f"the token does not reach account {choose}; it reaches {ids}")
    if len(pages) != 1:
        listed = ", ".join(f"{i} ({p.get('name')})" for i, p in zip(ids, pages, strict=True))
        raise AccountChoiceError(
            f"the token reaches {len(pages)} accounts: {listed or 'none'}; "
            "choose one with --account-id"
        )
    return pages[0]


async def identify(
    http: httpx.AsyncClient,
    provider: Provider,
    tokens: TokenSet,
    choose: str | None = None,
    long_lived_user: bool = False,
) -> Account:
    """The account the token acts for (`choose`: which one, when it reaches several).
    `long_lived_user`: the user token was exchanged, so Page tokens do not expire."""
    body = await _get(http, provider.identity_url, tokens.access_token)
    try:
        if provider.identity is Identity.USERINFO:
            return Account(str(body["id"]), str(body.get("name") or body["id"]), tokens)
        if provider.identity is Identity.YOUTUBE_CHANNEL:
            item = _pick(list(body.get("items") or []), choose, "")
            return Account(str(item["id"]), str(item["snippet"]["title"]), tokens)
        if provider.identity is Identity.X_ME:
            data = body["data"]
            return Account(str(data["id"]), "@" + str(data["username"]), tokens)
        pages = list(body.get("data") or [])
        if provider.identity is Identity.INSTAGRAM_ACCOUNT:
            pages = [p for p in pages if p.get("instagram_business_account")]
            page = _pick(pages, choose, "instagram_business_account")
            ig = page["instagram_business_account"]
            account_id, name = str(ig["id"]), "@" + str(ig.get("username") or ig["id"])
        else:
            page = _pick(pages, choose, "")
            account_id, name = str(page["id"]), str(page.get("name") or page["id"])
    except (KeyError, TypeError) as exc:
        raise OAuthUnavailable(f"the identity answer lacks {exc}") from exc
    # Publishing to a Page uses the Page's token; it expires only if the user token does.
    expires = None if long_lived_user else tokens.expires_at
    return Account(
        account_id, name, TokenSet(str(page["access_token"]), None, expires, tokens.scopes)
    )


__all__ = ["Account", "AccountChoiceError", "OAuthError", "identify", "long_lived"]
