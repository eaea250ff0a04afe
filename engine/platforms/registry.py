"""Which adapter serves which platform, built from the environment's credentials."""

from __future__ import annotations

from engine.platforms.base import Adapter
from engine.platforms.config import parse_quota
from engine.platforms.instagram import InstagramAdapter
from engine.platforms.mock import MockAdapter
from engine.platforms.x import XAdapter
from engine.platforms.youtube import YouTubeAdapter
from engine.resilience import Quota
from storage.settings import TrackingSettings
from storage.user_error import UserError


class NotConfigured(LookupError, UserError):
    """A creator's platform has no credentials in this deployment."""

    title = "platform not configured"


def _quota(platform: str, text: str) -> Quota:
    calls, per_s = parse_quota(text)
    return Quota(platform, calls=calls, per_s=per_s)


def build_adapters(ts: TrackingSettings) -> dict[str, Adapter]:
    """Adapters for every platform whose credentials are set (the mock is always there)."""
    adapters: dict[str, Adapter] = {
        "mock": MockAdapter(
            _quota("mock", ts.mockstagram_quota),
            ts.mockstagram_url,
            ts.mockstagram_token.get_secret_value(),
            ts.mockstagram_max_batch,
        )
    }
    if ts.youtube_api_key is not None:
        adapters["youtube"] = YouTubeAdapter(
            _quota("youtube", ts.youtube_quota), ts.youtube_api_key.get_secret_value()
        )
    if ts.x_bearer_token is not None:
        adapters["x"] = XAdapter(_quota("x", ts.x_quota), ts.x_bearer_token.get_secret_value())
    if ts.instagram_access_token is not None and ts.instagram_user_id:
        adapters["instagram"] = InstagramAdapter(
            _quota("instagram", ts.instagram_quota),
            ts.instagram_access_token.get_secret_value(),
            ts.instagram_user_id,
        )
    return adapters


MISSING_CREDENTIALS = {
    "youtube": "YOUTUBE_API_KEY",
    "x": "X_BEARER_TOKEN",
    "instagram": "INSTAGRAM_ACCESS_TOKEN and INSTAGRAM_USER_ID",
}
