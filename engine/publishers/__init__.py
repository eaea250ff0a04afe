"""Platform publishers behind one interface (`base.Publisher`), one module per platform."""

from __future__ import annotations

import os

import httpx

from engine.publishers.base import Publisher
from engine.publishers.facebook import FacebookPublisher
from engine.publishers.instagram import InstagramPublisher
from engine.publishers.mock import MockPublisher
from engine.publishers.x import XPublisher
from engine.publishers.youtube import YouTubePublisher
from storage.models import Platform

DEFAULT_MOCK_URL = "http://127.0.0.1:8765"  # engine.platforms.mockstagram.server

PUBLISHERS: dict[Platform, type[Publisher]] = {
    Platform.MOCK: MockPublisher,
    Platform.X: XPublisher,
    Platform.FACEBOOK: FacebookPublisher,
    Platform.INSTAGRAM: InstagramPublisher,
    Platform.YOUTUBE: YouTubePublisher,
}


def default_base_urls() -> dict[Platform, str]:
    # The mock platform's address is deployment configuration (where `creatordeck mockstagram`
    # listens); the real platforms' are fixed.
    return {Platform.MOCK: os.environ.get("MOCKSTAGRAM_URL", DEFAULT_MOCK_URL)}


def build_publishers(
    client: httpx.AsyncClient, base_urls: dict[Platform, str] | None = None
) -> dict[Platform, Publisher]:
    urls = {**default_base_urls(), **(base_urls or {})}
    return {platform: cls(client, urls.get(platform)) for platform, cls in PUBLISHERS.items()}
