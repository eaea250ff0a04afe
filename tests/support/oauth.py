"""Fixtures for tests/engine/oauth: the mock platform's OAuth server (with its publishing
endpoints, which refuse its expired tokens) on a loopback port, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from engine.mock_platform.oauth import OAuthConfig, OAuthState
from engine.mock_platform.oauth import build_router as oauth_router
from engine.mock_platform.publish import PublishState
from engine.mock_platform.publish import build_router as publish_router
from engine.oauth.providers import PROVIDERS, Provider
from storage.models import Platform
from storage.settings import Settings
from tests.support.publishing import start_server


class MockTime:
    """The mock server's clock (epoch seconds), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class OAuthMock:
    url: str
    state: OAuthState
    publishing: PublishState
    time: MockTime

    def configure(self, **config: object) -> None:
        self.state.config = OAuthConfig.model_validate(config)

    def provider(self, platform: Platform = Platform.MOCK) -> Provider:
        return PROVIDERS[platform].at(self.url)

    def settings(self, **extra: object) -> Settings:
        """Settings whose OAuth clients are the mock's (the rest from the environment)."""
        values: dict[str, object] = {
            "youtube_client_id": "yt-client",
            "youtube_client_secret": "yt-secret",
            "facebook_app_id": "fb-app",
            "facebook_client_token": "fb-client-token",
            "facebook_app_secret": "fb-secret",
            "x_client_id": "x-client",
            "x_client_secret": "x-secret",
            "base_url": self.url,
            **extra,
        }
        return Settings(_env_file=None, oauth=values)

    def approve_first(self, deny: bool = False) -> None:
        (device,) = [d for d in self.state.devices.values() if d.state == "pending"]
        device.state = "denied" if deny else "approved"


@pytest.fixture(scope="session")
async def oauth_server() -> AsyncIterator[OAuthMock]:
    clock = MockTime()
    state = OAuthState(clock=clock)
    publishing = PublishState(refuses=state.refuses)
    app = FastAPI()
    app.include_router(oauth_router(state))
    app.include_router(publish_router(publishing))
    server, task, url = await start_server(app)
    yield OAuthMock(url, state, publishing, clock)
    server.should_exit = True
    await task


@pytest.fixture
def oauth_mock(oauth_server: OAuthMock) -> OAuthMock:
    oauth_server.state.reset()
    oauth_server.publishing.posts.clear()
    oauth_server.publishing.by_key.clear()
    oauth_server.publishing.requests = 0
    return oauth_server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


class Sleeps:
    """A device-poll `sleep` that records the intervals and does not wait."""

    def __init__(self, mock: OAuthMock | None = None, approve_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.mock = mock
        self.approve_after = approve_after

        self.deny = False

    def deny_first(self) -> Sleeps:
        """Deny (instead of approve) the pending request before the first poll."""
        self.deny, self.approve_after = True, 1
        return self

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.mock is not None and len(self.waits) == self.approve_after:
            self.mock.approve_first(deny=self.deny)
