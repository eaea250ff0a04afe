"""Platform publishers behind one interface (`base.Publisher`), one module per platform.

`media.py` checks a post's media again before sending and reads it (files, URLs) in chunks;
`x_media.py` is X's chunked media upload; `transport.py` the shared HTTP transport.
"""

from __future__ import annotations

import httpx

from engine.publishers.base import Publisher
from engine.publishers.facebook import FacebookPublisher
from engine.publishers.instagram import InstagramPublisher
from engine.publishers.mock import MockPublisher
from engine.publishers.x import XPublisher
from engine.publishers.youtube import YouTubePublisher
from storage.models import Platform
from storage.settings import TrackingSettings

PUBLISHERS: dict[Platform, type[Publisher]] = {
    Platform.MOCK: MockPublisher,
    Platform.X: XPublisher,
    Platform.FACEBOOK: FacebookPublisher,
    Platform.INSTAGRAM: InstagramPublisher,
    Platform.YOUTUBE: YouTubePublisher,
}


def default_base_urls(tracking: TrackingSettings) -> dict[Platform, str]:
    # The mock platform's address is deployment configuration (where `creatordeck mockstagram`
    # listens: MOCKSTAGRAM_URL, shared with the tracking adapters); the real platforms' are fixed.
    return {Platform.MOCK: tracking.mockstagram_url}


def build_publishers(
    client: httpx.AsyncClient,
    tracking: TrackingSettings,
    base_urls: dict[Platform, str] | None = None,
) -> dict[Platform, Publisher]:
    urls = {**default_base_urls(tracking), **(base_urls or {})}
    return {platform: cls(client, urls.get(platform)) for platform, cls in PUBLISHERS.items()}
