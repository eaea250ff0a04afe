"""The Connections screen's "connect again": the device flow in a modal, approved on another
device (the mock platform on loopback), and the account is ok again."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from console.screens.connect_modal import ConnectModal
from console.screens.connections import ConnectionsScreen
from storage.crypto import TokenCipher
from storage.database import Database
from storage.models import Connection
from storage.queries import oauth_tokens
from storage.settings import Settings
from tests.console.screens.test_posts import open_screen
from tests.console.test_app import SIZE, make_app, notifications, wait_until
from tests.support.oauth import OAuthMock, oauth_mock, oauth_server
from tests.support.publishing import KEY, add_connection, pub_settings

__all__ = ["oauth_mock", "oauth_server", "pub_settings"]


@pytest.fixture
def mock_settings(pub_settings: Settings, oauth_mock: OAuthMock) -> Settings:
    """The console's settings, with the mock platform where the test's mock listens."""
    return pub_settings.replace(tracking={"mockstagram_url": oauth_mock.url})


async def test_connect_again_from_the_connections_screen(
    mock_settings: Settings, db: Database, oauth_mock: OAuthMock
) -> None:
    conn = await add_connection(db, "mock-account-1", "tok-old")
    async with db.transaction() as session:
        reason = "mock refused the token refresh (invalid_grant): connect again"
        await oauth_tokens.set_needs_reauth(session, conn.id, reason)
    oauth_mock.configure(interval_s=0.1)
    app = make_app(mock_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "connections", ConnectionsScreen)
        detail = str(screen.query_one("#detail", Static).render())
        assert "invalid_grant" in detail
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectModal), "the modal")
        steps = app.screen.query_one("#connect-steps", Static)
        await wait_until(pilot, lambda: bool(oauth_mock.state.devices), "a device code")
        (device,) = oauth_mock.state.devices.values()
        await wait_until(pilot, lambda: device.user_code in str(steps.render()), "the code shown")
        oauth_mock.approve_first()
        await wait_until(pilot, lambda: app.screen is screen, "the modal to close", timeout=60)
        await wait_until(
            pilot,
            lambda: any("connection 1 saved" in n for n in notifications(app)),
            "the saved notice",
        )
        await wait_until(pilot, lambda: screen.rows[0].status == "ok", "the row ok", timeout=30)
    async with db.session() as session:
        fresh = await session.get(Connection, conn.id)
    assert fresh is not None and fresh.status == "ok" and fresh.status_reason is None
    assert TokenCipher(KEY).decrypt(fresh.token_encrypted) != "tok-old"
