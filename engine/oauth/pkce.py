"""The authorization code flow with PKCE (RFC 7636), for a terminal: show the authorization
URL; the operator opens it anywhere, approves, and pastes back the URL the browser was sent to
(or just its `code`). No listener on the server: the redirect may well fail to load.

The `state` is checked when a URL is pasted (a URL from another attempt is refused); the
verifier never leaves this process until the code exchange.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from engine.oauth.providers import Client, Provider
from engine.oauth.tokens import OAuthError, TokenSet, token_request
from storage.user_error import UserError


class PasteError(ValueError, UserError):
    """What was pasted is not this attempt's redirect or code (the message says why)."""

    title = "not a redirect or code"


@dataclass(frozen=True, slots=True)
class PkceStart:
    url: str
    redirect_uri: str
    state: str = field(repr=False)
    verifier: str = field(repr=False)


def challenge_of(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin(provider: Provider, app: Client, redirect_uri: str) -> PkceStart:
    if provider.authorize_url is None:
        raise OAuthError("unsupported_response_type", f"{provider.platform} has no PKCE flow")
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    state = secrets.token_urlsafe(24)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(provider.scopes),
            "state": state,
            "code_challenge": challenge_of(verifier),
            "code_challenge_method": "S256",
        }
    )
    return PkceStart(f"{provider.authorize_url}?{query}", redirect_uri, state, verifier)


def code_from(pasted: str, start: PkceStart) -> str:
    """The authorization code in a pasted redirect URL (state checked), or the pasted code."""
    text = pasted.strip()
    if not text:
        raise PasteError("nothing was pasted: paste the URL the browser ended on, or the code")
    if "?" not in text and "=" not in text:
        return text  # the bare code
    query = parse_qs(urlsplit(text).query if "?" in text else text)
    if "error" in query:
        reason = (query.get("error_description") or query["error"])[0]
        raise PasteError(f"the platform refused the authorization: {reason}")
    state = (query.get("state") or [""])[0]
    if not secrets.compare_digest(state, start.state):
        raise PasteError("that URL belongs to another attempt (state differs): use this one's")
    code = (query.get("code") or [""])[0]
    if not code:
        raise PasteError("that URL has no code= parameter")
    return code


async def finish(
    http: httpx.AsyncClient,
    provider: Provider,
    app: Client,
    start: PkceStart,
    code: str,
    now: datetime,
) -> TokenSet:
    """Exchange the code (with the verifier) for tokens."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": start.redirect_uri,
        "code_verifier": start.verifier,
    }
    return await token_request(http, provider, app, form, now)
