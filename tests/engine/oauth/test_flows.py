"""Connecting accounts end to end against the mock platform on loopback: the device flow
(RFC 8628 for the mock and YouTube, Facebook Login for Devices for Facebook and Instagram),
the authorization code flow with PKCE (X), and what is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from engine.oauth import device, pkce
from engine.oauth.device import DeviceDenied, DeviceExpired
from engine.oauth.flow import ConnectFlow
from engine.oauth.pkce import PasteError
from engine.oauth.tokens import GrantRefused
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import AuditEntry, Connection, Platform
from tests.support.clock import ManualClock
from tests.support.oauth import OAuthMock, Sleeps, http, oauth_mock, oauth_server

__all__ = ["http", "oauth_mock", "oauth_server"]
BOX = TokenCipher(Fernet.generate_key().decode())
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def flow_for(mock: OAuthMock, http: httpx.AsyncClient, platform: Platform) -> ConnectFlow:
    return ConnectFlow.for_platform(platform, http, mock.settings(), clock=ManualClock(NOW))


async def test_device_flow_polls_at_the_interval_honours_slow_down_and_stores_encrypted(
    oauth_mock: OAuthMock, http: httpx.AsyncClient, db: Database
) -> None:
    oauth_mock.configure(interval_s=2, script=["slow_down"], access_ttl_s=3600)
    flow = flow_for(oauth_mock, http, Platform.MOCK)
    grant = await flow.start_device()
    assert grant.user_code and grant.verification_uri.startswith(oauth_mock.url)
    sleeps = Sleeps(oauth_mock, approve_after=3)
    slowed: list[float] = []
    tokens = await flow.finish_device(grant, sleep=sleeps, on_wait=slowed.append)
    # 1st poll: slow_down (interval 2 -> 7); 2nd: pending; 3rd: approved before it.
    assert sleeps.waits == [2, 7, 7] and slowed == [7]
    assert tokens.refresh_token and tokens.expires_at is not None
    assert (tokens.expires_at - NOW).total_seconds() == 3600
    account = await flow.account(tokens)
    assert (account.account_id, account.display_name) == ("mock-account-1", "Mock Creator")
    connection_id = await flow.save(db, BOX, account, "tester")
    async with db.session() as session:
        conn = await session.get(Connection, connection_id)
        audit = (await session.scalars(select(AuditEntry))).all()
    assert conn is not None and conn.status == "ok" and conn.scopes == "publish read"
    assert conn.expires_at == tokens.expires_at and conn.token_generation == 0
    assert tokens.access_token not in conn.token_encrypted
    assert BOX.decrypt(conn.token_encrypted) == tokens.access_token
    assert conn.refresh_token_encrypted is not None
    assert BOX.decrypt(conn.refresh_token_encrypted) == tokens.refresh_token
    assert [a.action for a in audit] == ["connection.connect"]
    assert tokens.access_token not in str(audit[0].after)
    # Connecting again replaces the tokens of the same row.
    grant = await flow.start_device()
    again = await flow.finish_device(grant, sleep=Sleeps(oauth_mock, approve_after=1))
    assert await flow.save(db, BOX, await flow.account(again), "tester") == connection_id


async def test_youtube_device_flow_finds_the_channel(
    oauth_mock: OAuthMock, http: httpx.AsyncClient
) -> None:
    oauth_mock.configure(interval_s=5, auto_approve_after=2)
    flow = flow_for(oauth_mock, http, Platform.YOUTUBE)
    grant = await flow.start_device()
    sleeps = Sleeps()
    tokens = await flow.finish_device(grant, sleep=sleeps)
    assert sleeps.waits == [5, 5, 5]
    assert oauth_mock.state.counters["token:" + device.DEVICE_GRANT] == 3
    account = await flow.account(tokens)
    assert account.account_id == "UCmock-account-1" and account.tokens.refresh_token


async def test_device_flow_refused_or_expired(
    oauth_mock: OAuthMock, http: httpx.AsyncClient
) -> None:
    oauth_mock.configure(interval_s=1)
    flow = flow_for(oauth_mock, http, Platform.MOCK)
    grant = await flow.start_device()
    with pytest.raises(DeviceDenied):
        await flow.finish_device(grant, sleep=Sleeps(oauth_mock, approve_after=-1).deny_first())
    oauth_mock.configure(interval_s=1, device_ttl_s=60)
    grant = await flow.start_device()

    async def time_passes(seconds: float) -> None:
        oauth_mock.time.now += 61  # the server sees the code expire

    with pytest.raises(DeviceExpired):
        await flow.finish_device(grant, sleep=time_passes)
    # The client stops by itself at the code's expiry, however patient the server.
    clock = [0.0]

    async def local(seconds: float) -> None:
        clock[0] += seconds

    grant = await flow.start_device()
    with pytest.raises(DeviceExpired):
        await device.poll(http, flow.provider, flow.app, grant, sleep=local, clock=lambda: clock[0])
    assert clock[0] <= 60


@pytest.mark.parametrize("platform", [Platform.FACEBOOK, Platform.INSTAGRAM])
async def test_facebook_login_for_devices_stores_a_lasting_page_token(
    oauth_mock: OAuthMock, http: httpx.AsyncClient, platform: Platform
) -> None:
    oauth_mock.configure(interval_s=5, script=["slow_down", "authorization_pending"])
    flow = flow_for(oauth_mock, http, platform)
    grant = await flow.start_device()
    sleeps = Sleeps(oauth_mock, approve_after=3)
    tokens = await flow.finish_device(grant, sleep=sleeps)
    assert sleeps.waits == [5, 10, 10]
    assert tokens.refresh_token is None  # Facebook gives none
    account = await flow.account(tokens)
    expected = "page-mock-account-1" if platform is Platform.FACEBOOK else "ig-mock-account-1"
    assert account.account_id == expected
    # Exchanged for a long-lived user token first: the Page token does not expire.
    assert account.tokens.expires_at is None and account.tokens.access_token != tokens.access_token


async def test_x_pkce_takes_the_pasted_redirect(
    oauth_mock: OAuthMock, http: httpx.AsyncClient, db: Database
) -> None:
    flow = flow_for(oauth_mock, http, Platform.X)
    start = flow.start_pkce("http://127.0.0.1:8976/callback")
    assert "code_challenge_method=S256" in start.url and start.verifier not in start.url
    # The person opens the URL and approves; the browser lands on the redirect (which may not
    # load): that address is what gets pasted back.
    landed = (await http.get(start.url)).headers["location"]
    assert landed.startswith("http://127.0.0.1:8976/callback?code=")
    with pytest.raises(PasteError, match="another attempt"):
        await flow.finish_pkce(flow.start_pkce(start.redirect_uri), landed)
    tokens = await flow.finish_pkce(start, landed + "\n")
    assert tokens.refresh_token and "offline.access" in (tokens.scopes or "")
    account = await flow.account(tokens)
    assert (account.account_id, account.display_name) == ("mock-account-1", "@mock-account-1")
    assert await flow.save(db, BOX, account, "tester") > 0
    # A code is good once; and only with its own verifier.
    with pytest.raises(GrantRefused):
        await flow.finish_pkce(start, landed)
    other = flow.start_pkce(start.redirect_uri)
    code = pkce.code_from((await http.get(other.url)).headers["location"], other)
    with pytest.raises(GrantRefused, match="code_verifier"):
        await pkce.finish(http, flow.provider, flow.app, start, code, NOW)


async def test_pkce_paste_errors_are_precise(
    oauth_mock: OAuthMock, http: httpx.AsyncClient
) -> None:
    start = flow_for(oauth_mock, http, Platform.X).start_pkce("http://127.0.0.1/cb")
    for pasted, message in [
        ("", "nothing was pasted"),
        ("http://127.0.0.1/cb?error=access_denied&state=x", "refused"),
        (f"http://127.0.0.1/cb?state={start.state}", "no code="),
    ]:
        with pytest.raises(PasteError, match=message):
            pkce.code_from(pasted, start)
    assert pkce.code_from("  abc123 ", start) == "abc123"
