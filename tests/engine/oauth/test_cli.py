"""`creatordeck connections connect` end to end, as an operator over SSH runs it: a real CLI
process, the mock platform on loopback approving the device code, or the redirect pasted back."""

from __future__ import annotations

import asyncio
import sys

import httpx
from sqlalchemy import select

from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import Connection
from storage.settings import Settings
from tests.conftest import engine_env
from tests.support.oauth import OAuthMock, http, oauth_mock, oauth_server
from tests.support.publishing import KEY

__all__ = ["http", "oauth_mock", "oauth_server"]
SECRET_ENV = {"X_CLIENT_ID": "x-client", "X_CLIENT_SECRET": "x-secret-value"}


async def start_cli(settings: Settings, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "console.cli",
        *args,
        env=engine_env(settings, ENCRYPTION_KEY=KEY, **env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def connections(db: Database) -> list[Connection]:
    async with db.session() as session:
        return list(await session.scalars(select(Connection).order_by(Connection.id)))


async def test_connect_with_the_device_flow_then_refresh_from_the_cli(
    oauth_mock: OAuthMock, db: Database, test_settings: Settings
) -> None:
    oauth_mock.configure(interval_s=0.2, auto_approve_after=2, script=["slow_down"])
    proc = await start_cli(
        test_settings, "connections", "connect", "mock", MOCKSTAGRAM_URL=oauth_mock.url
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = err.decode()
    assert proc.returncode == 0, text
    (device,) = oauth_mock.state.devices.values()
    assert f"enter the code:\n\n  {device.user_code}" in text
    assert "slow down: every 5.2 s now" in text
    assert "connection 1 saved (mock Mock Creator, account mock-account-1" in text
    (conn,) = await connections(db)
    assert conn.scopes == "publish read" and conn.refresh_token_encrypted is not None
    for token in oauth_mock.state.access:
        assert token not in text
    proc = await start_cli(
        test_settings, "connections", "refresh", "1", MOCKSTAGRAM_URL=oauth_mock.url
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0 and "connection 1: refreshed" in err.decode()
    assert oauth_mock.state.counters["refreshes"] == 1


async def test_connect_x_with_pkce_pasting_the_redirect(
    oauth_mock: OAuthMock, db: Database, test_settings: Settings, http: httpx.AsyncClient
) -> None:
    proc = await start_cli(
        test_settings, "connections", "connect", "x", OAUTH_BASE_URL=oauth_mock.url, **SECRET_ENV
    )
    assert proc.stderr is not None and proc.stdin is not None
    url = ""
    while not url:
        line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
        assert line, "the CLI ended before showing the URL"
        if line.strip().startswith("http"):
            url = line.strip()
    landed = (await http.get(url)).headers["location"]
    proc.stdin.write(landed.encode() + b"\n")
    await proc.stdin.drain()
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = err.decode()
    assert proc.returncode == 0, text
    assert "saved (x @mock-account-1" in text and "x-secret-value" not in text
    (conn,) = await connections(db)
    assert conn.platform == "x" and "offline.access" in (conn.scopes or "")
    assert conn.refresh_token_encrypted and TokenCipher(KEY).decrypt(conn.refresh_token_encrypted)


async def test_connect_says_which_setting_is_missing_and_a_refusal(
    oauth_mock: OAuthMock, db: Database, test_settings: Settings
) -> None:
    proc = await start_cli(test_settings, "connections", "connect", "youtube")
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 1
    assert "YOUTUBE_CLIENT_ID and YOUTUBE_CLIENT_SECRET must be set" in err.decode()
    oauth_mock.configure(interval_s=0.1, script=["access_denied"])
    proc = await start_cli(
        test_settings, "connections", "connect", "mock", MOCKSTAGRAM_URL=oauth_mock.url
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 1 and "refused on the other device" in err.decode()
    assert await connections(db) == []
