"""The mock platform's OAuth 2.0 server: device flow, PKCE, refresh (rotating), revoke, expiry.

It answers at each real platform's paths too (Google, X, Facebook), so
`engine.oauth.providers.Provider.at(mock_url)` runs every platform's flow on loopback:

    POST /oauth/device/code · /device/code                  RFC 8628 device authorization
    POST /oauth/token · /token · /2/oauth2/token            grants: device_code, refresh_token,
                                                            authorization_code (PKCE S256)
    GET  /oauth/authorize · /i/oauth2/authorize             approves at once: 302 to redirect_uri
    POST /oauth/revoke · /revoke · /2/oauth2/revoke         an access or refresh token (family)
    GET  /oauth/userinfo · /youtube/v3/channels · /2/users/me · /v21.0/me/accounts   identity
    POST /v21.0/device/login · /v21.0/device/login_status  Facebook Login for Devices
    GET  /v21.0/oauth/access_token                          Facebook long-lived token exchange
    GET  /oauth/device?user_code=…&deny=0                   the "person" approves (or denies)

Control (tests, demo): `POST /oauth/_control/approve {"user_code", "deny"}`,
`PUT /oauth/_control/config` (OAuthConfig), `POST /oauth/_control/expire` (every access token
expires now), `POST /oauth/_control/revoke_refresh` (every refresh token dies: the next refresh
gets invalid_grant), `GET /oauth/_control/stats`, `POST /oauth/_control/reset`.

Refresh tokens rotate (`rotate_refresh`): each refresh answers a new one and retires the old;
a retired one sent again is refused with invalid_grant and, like a careful real platform,
revokes its whole family (`revoke_family_on_reuse`). Access tokens stay valid until their own
expiry after a refresh. `auto_approve_after` approves a pending device code after N polls;
`script` serves scripted device-poll answers first (e.g. ["slow_down"]). State is in memory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FB_PENDING, FB_SLOW_DOWN, FB_EXPIRED, FB_DENIED = 1349174, 1349172, 1349152, 1349173


class OAuthConfig(BaseModel):
    access_ttl_s: float = Field(default=3600.0, gt=0)
    device_ttl_s: float = Field(default=600.0, gt=0)
    interval_s: float = Field(default=5.0, ge=0, description="device poll interval announced")
    rotate_refresh: bool = True
    revoke_family_on_reuse: bool = True
    auto_approve_after: int | None = Field(default=None, ge=0, description="polls, then approve")
    script: list[str] = Field(default_factory=list, description="device-poll answers served first")
    refresh_latency_s: float = Field(default=0.0, ge=0, le=30, description="held before answering")
    account_id: str = "mock-account-1"
    account_name: str = "Mock Creator"


def config_from_env() -> OAuthConfig:
    """`creatordeck mockstagram`'s OAuth settings: MOCKSTAGRAM_OAUTH_AUTO_APPROVE (polls before
    a device code approves itself; the demo sets it) and MOCKSTAGRAM_OAUTH_INTERVAL_S."""
    values: dict[str, str] = {}
    if os.environ.get("MOCKSTAGRAM_OAUTH_AUTO_APPROVE"):
        values["auto_approve_after"] = os.environ["MOCKSTAGRAM_OAUTH_AUTO_APPROVE"]
    if os.environ.get("MOCKSTAGRAM_OAUTH_INTERVAL_S"):
        values["interval_s"] = os.environ["MOCKSTAGRAM_OAUTH_INTERVAL_S"]
    return OAuthConfig.model_validate(values)


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    scope: str
    expires: float
    state: str = "pending"  # pending | approved | denied | used
    polls: int = 0


@dataclass
class Grant:
    """One authorisation: its refresh tokens form a family, revoked together."""

    scope: str
    revoked: bool = False


@dataclass
class OAuthState:
    config: OAuthConfig = field(default_factory=OAuthConfig)
    clock: Callable[[], float] = time.time
    devices: dict[str, DeviceCode] = field(default_factory=dict)  # by device code
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # authorization codes
    access: dict[str, tuple[float, Grant]] = field(default_factory=dict)  # token: expiry, grant
    refresh: dict[str, tuple[bool, Grant]] = field(default_factory=dict)  # token: current?, grant
    counters: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        self.config = OAuthConfig()
        for table in (self.devices, self.codes, self.access, self.refresh):
            table.clear()
        self.counters.clear()

    def refuses(self, token: str) -> bool:
        """For the other mock endpoints: a token this server issued that is expired or revoked.
        Tokens it never issued pass (tests and the demo use made-up ones)."""
        held = self.access.get(token)
        if held is None:
            return False
        expiry, grant = held
        return grant.revoked or self.clock() >= expiry

    def issue(self, grant: Grant, with_refresh: bool = True) -> dict[str, Any]:
        access = "mat_" + secrets.token_urlsafe(24)
        self.access[access] = (self.clock() + self.config.access_ttl_s, grant)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.config.access_ttl_s),
            "scope": grant.scope,
        }
        if with_refresh:
            refresh = "mrt_" + secrets.token_urlsafe(24)
            self.refresh[refresh] = (True, grant)
            body["refresh_token"] = refresh
        return body


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status)


def _fb_error(subcode: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "code": 31, "error_subcode": subcode}}, 400)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (all OAuth sends; no multipart dependency)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _new_device(st: OAuthState, scope: str) -> DeviceCode:
    alphabet = "BCDFGHJKLMNPQRSTVWXZ"
    user = "".join(secrets.choice(alphabet) for _ in range(8))
    device = DeviceCode(
        device_code=secrets.token_urlsafe(32),
        user_code=f"{user[:4]}-{user[4:]}",
        scope=scope,
        expires=st.clock() + st.config.device_ttl_s,
    )
    st.devices[device.device_code] = device
    st.counters["device_codes"] += 1
    return device


def _poll(st: OAuthState, device_code: str) -> tuple[str, dict[str, Any] | None]:
    """One device poll: (answer word, tokens when approved)."""
    st.counters["device_polls"] += 1
    device = st.devices.get(device_code)
    if device is None or device.state == "used":
        return "invalid_grant", None
    if st.clock() >= device.expires:
        return "expired_token", None
    if st.config.script:
        return st.config.script.pop(0), None
    device.polls += 1
    limit = st.config.auto_approve_after
    if device.state == "pending" and limit is not None and device.polls > limit:
        device.state = "approved"
    if device.state == "denied":
        return "access_denied", None
    if device.state != "approved":
        return "authorization_pending", None
    device.state = "used"
    return "ok", st.issue(Grant(device.scope))


def _refresh(st: OAuthState, token: str) -> tuple[str, dict[str, Any] | None]:
    held = st.refresh.get(token)
    if held is None:
        st.counters["refresh_refused"] += 1
        return "unknown refresh token", None
    current, grant = held
    if grant.revoked:
        st.counters["refresh_refused"] += 1
        return "the authorisation was revoked", None
    if not current:
        st.counters["refresh_reused"] += 1
        if st.config.revoke_family_on_reuse:
            grant.revoked = True
        return "refresh token already used (rotated)", None
    st.counters["refreshes"] += 1
    if not st.config.rotate_refresh:
        return "ok", st.issue(grant, with_refresh=False)
    st.refresh[token] = (False, grant)
    return "ok", st.issue(grant)


def _code_ok(st: OAuthState, form: dict[str, str]) -> tuple[str, dict[str, Any] | None]:
    saved = st.codes.pop(form.get("code", ""), None)
    if saved is None:
        return "unknown or used authorization code", None
    verifier = form.get("code_verifier", "")
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    if not verifier or not secrets.compare_digest(digest.decode(), saved["challenge"]):
        return "code_verifier does not match the code_challenge", None
    if form.get("redirect_uri") != saved["redirect_uri"]:
        return "redirect_uri differs from the authorization request's", None
    st.counters["codes_exchanged"] += 1
    return "ok", st.issue(Grant(saved["scope"]))


def build_router(state: OAuthState | None = None) -> APIRouter:
    """The OAuth routes; one `OAuthState` per mock platform (tests pass their own)."""
    st = state or OAuthState()
    router = APIRouter(tags=["oauth"])

    async def device_code(request: Request) -> Response:
        form = await _form(request)
        if not form.get("client_id") and "authorization" not in request.headers:
            return _error("invalid_client", "client_id is required", 401)
        device = _new_device(st, form.get("scope", ""))
        base = str(request.base_url)
        return JSONResponse(
            {
                "device_code": device.device_code,
                "user_code": device.user_code,
                "verification_uri": f"{base}oauth/device",
                "verification_uri_complete": f"{base}oauth/device?user_code={device.user_code}",
                "expires_in": int(st.config.device_ttl_s),
                "interval": st.config.interval_s,
            }
        )

    async def token(request: Request) -> Response:
        form = await _form(request)
        grant_type = form.get("grant_type")
        st.counters[f"token:{grant_type}"] += 1
        if grant_type == DEVICE_GRANT:
            word, body = _poll(st, form.get("device_code", ""))
            return JSONResponse(body) if body else _error(word, word.replace("_", " "))
        if grant_type == "refresh_token":
            if st.config.refresh_latency_s:
                await asyncio.sleep(st.config.refresh_latency_s)
            word, body = _refresh(st, form.get("refresh_token", ""))
            return JSONResponse(body) if body else _error("invalid_grant", word)
        if grant_type == "authorization_code":
            word, body = _code_ok(st, form)
            return JSONResponse(body) if body else _error("invalid_grant", word)
        return _error("unsupported_grant_type", f"grant_type {grant_type!r}")

    async def authorize(request: Request) -> Response:
        q = request.query_params
        redirect = q.get("redirect_uri", "")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not redirect:
            return _error("invalid_request", "S256 code_challenge and redirect_uri required")
        if q.get("deny"):
            query = urlencode({"error": "access_denied", "state": q.get("state", "")})
            return RedirectResponse(f"{redirect}?{query}", 302)
        code = secrets.token_urlsafe(24)
        st.codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": redirect,
            "scope": q.get("scope", ""),
        }
        query = urlencode({"code": code, "state": q.get("state", "")})
        return RedirectResponse(f"{redirect}?{query}", 302)

    async def revoke(request: Request) -> Response:
        form = await _form(request)
        value = form.get("token", "")
        held = st.access.get(value) or st.refresh.get(value)
        if held is not None:
            held[1].revoked = True
            st.counters["revoked"] += 1
        return JSONResponse({"revoked": True})

    def _who(request: Request) -> Grant | None:
        held = st.access.get(_bearer(request))
        if held is None or held[1].revoked or st.clock() >= held[0]:
            return None
        return held[1]

    async def userinfo(request: Request) -> Response:
        if _who(request) is None:
            return _error("invalid_token", "expired, revoked or unknown token", 401)
        cfg = st.config
        path = request.url.path
        if path.endswith("/channels"):
            item = {"id": f"UC{cfg.account_id}", "snippet": {"title": cfg.account_name}}
            return JSONResponse({"items": [item]})
        if path.endswith("/users/me"):
            data = {"id": cfg.account_id, "name": cfg.account_name, "username": cfg.account_id}
            return JSONResponse({"data": data})
        if path.endswith("/me/accounts"):
            page_token = st.issue(Grant("pages"), with_refresh=False)["access_token"]
            page = {
                "id": f"page-{cfg.account_id}",
                "name": cfg.account_name,
                "access_token": page_token,
                "instagram_business_account": {"id": f"ig-{cfg.account_id}", "username": "mock"},
            }
            return JSONResponse({"data": [page]})
        return JSONResponse({"id": cfg.account_id, "name": cfg.account_name})

    async def fb_login(request: Request) -> Response:
        form = await _form(request)
        if "|" not in form.get("access_token", ""):
            return JSONResponse({"error": {"message": "APP_ID|CLIENT_TOKEN", "code": 190}}, 400)
        device = _new_device(st, form.get("scope", "").replace(",", " "))
        return JSONResponse(
            {
                "code": device.device_code,
                "user_code": device.user_code,
                "verification_uri": f"{request.base_url}oauth/device",
                "expires_in": int(st.config.device_ttl_s),
                "interval": st.config.interval_s,
            }
        )

    async def fb_status(request: Request) -> Response:
        form = await _form(request)
        word, body = _poll(st, form.get("code", ""))
        if body:
            body.pop("refresh_token", None)  # Facebook gives none
            return JSONResponse(body)
        subcode = {
            "authorization_pending": FB_PENDING,
            "slow_down": FB_SLOW_DOWN,
            "expired_token": FB_EXPIRED,
        }.get(word, FB_DENIED)
        return _fb_error(subcode, word.replace("_", " "))

    async def fb_exchange(request: Request) -> Response:
        q = request.query_params
        held = st.access.get(q.get("fb_exchange_token", ""))
        if q.get("grant_type") != "fb_exchange_token" or held is None or not q.get("client_secret"):
            return JSONResponse({"error": {"message": "bad exchange", "code": 190}}, 400)
        body = st.issue(held[1], with_refresh=False)
        st.access[body["access_token"]] = (st.clock() + 60 * 86_400, held[1])
        return JSONResponse({**body, "expires_in": 60 * 86_400})

    async def approve_page(request: Request) -> Response:
        q = request.query_params
        return _decide(st, q.get("user_code", ""), q.get("deny", "0") not in ("", "0"))

    async def approve(request: Request) -> Response:
        body = await request.json()
        return _decide(st, str(body.get("user_code", "")), bool(body.get("deny")))

    async def put_config(request: Request) -> Response:
        st.config = OAuthConfig.model_validate({**st.config.model_dump(), **await request.json()})
        return JSONResponse(st.config.model_dump(mode="json"))

    async def expire(request: Request) -> Response:
        now = st.clock()
        for key, (_, grant) in list(st.access.items()):
            st.access[key] = (now, grant)
        return JSONResponse({"expired": len(st.access)})

    async def revoke_refresh(request: Request) -> Response:
        for _, grant in st.refresh.values():
            grant.revoked = True
        return JSONResponse({"revoked": len(st.refresh)})

    async def stats(request: Request) -> Response:
        return JSONResponse(dict(st.counters))

    async def reset(request: Request) -> Response:
        st.reset()
        return JSONResponse({"ok": True})

    routes: list[tuple[str, Callable[[Request], Any], str]] = [
        ("/oauth/device/code", device_code, "POST"),
        ("/device/code", device_code, "POST"),
        ("/oauth/token", token, "POST"),
        ("/token", token, "POST"),
        ("/2/oauth2/token", token, "POST"),
        ("/oauth/authorize", authorize, "GET"),
        ("/i/oauth2/authorize", authorize, "GET"),
        ("/oauth/revoke", revoke, "POST"),
        ("/revoke", revoke, "POST"),
        ("/2/oauth2/revoke", revoke, "POST"),
        ("/oauth/userinfo", userinfo, "GET"),
        ("/youtube/v3/channels", userinfo, "GET"),
        ("/2/users/me", userinfo, "GET"),
        ("/v21.0/me/accounts", userinfo, "GET"),
        ("/v21.0/device/login", fb_login, "POST"),
        ("/v21.0/device/login_status", fb_status, "POST"),
        ("/v21.0/oauth/access_token", fb_exchange, "GET"),
        ("/oauth/device", approve_page, "GET"),
        ("/oauth/_control/approve", approve, "POST"),
        ("/oauth/_control/config", put_config, "PUT"),
        ("/oauth/_control/expire", expire, "POST"),
        ("/oauth/_control/revoke_refresh", revoke_refresh, "POST"),
        ("/oauth/_control/stats", stats, "GET"),
        ("/oauth/_control/reset", reset, "POST"),
    ]
    for path, endpoint, method in routes:
        router.add_api_route(path, endpoint, methods=[method])
    return router


def _decide(st: OAuthState, user_code: str, deny: bool) -> Response:
    for device in st.devices.values():
        if device.user_code == user_code.strip().upper() and device.state == "pending":
            device.state = "denied" if deny else "approved"
            return JSONResponse({"user_code": device.user_code, "state": device.state})
    return JSONResponse({"error": "no pending request with that user code"}, 404)
