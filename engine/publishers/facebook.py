"""Facebook Pages: `POST /{page-id}/feed` (text, link) or `/{page-id}/photos` (image URL).

The token is a Page access token. Graph API errors carry a `code`: 190/102 mean the token is
invalid or expired; 4/17/32/613/80001 are rate limits; `is_transient` (or code 1/2) says retry.
Facebook offers no idempotency key: an unknown outcome goes to a person.
"""

from __future__ import annotations

import httpx

from engine.publishers.base import (
    AMBIGUOUS_STATUSES,
    Checkpoint,
    Published,
    Publisher,
    PublishRequest,
    bearer,
)
from engine.resilience import (
    AuthFailure,
    Failure,
    OutcomeUnknown,
    PermanentFailure,
    Quota,
    TransientFailure,
)
from storage.models import Platform

GRAPH_URL = "https://graph.facebook.com/v21.0"
AUTH_CODES = frozenset({102, 190})
RATE_CODES = frozenset({4, 17, 32, 613, 80001})
TRANSIENT_CODES = frozenset({1, 2})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")


def graph_failure(platform: str, response: httpx.Response) -> Failure | None:
    """Classify a Graph API (Facebook, Instagram) error response."""
    if response.status_code < 400:
        return None
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    message = (
        f"{platform} HTTP {response.status_code}: {error.get('message') or response.text[:200]}"
    )
    if code is not None:
        message += f" (code {code})"
    status = response.status_code
    if code in AUTH_CODES or status == 401:
        return AuthFailure(message, status=status)
    if code in RATE_CODES or status == 429:
        return TransientFailure(message, status=status, retry_after_s=60.0, rate_limited=True)
    if code in TRANSIENT_CODES or error.get("is_transient"):
        return TransientFailure(message, status=status)
    if status in AMBIGUOUS_STATUSES:
        return OutcomeUnknown(message, status=status)
    if status >= 500:
        return TransientFailure(message, status=status)
    return PermanentFailure(message, status=status)


class FacebookPublisher(Publisher):
    platform = Platform.FACEBOOK
    default_base_url = GRAPH_URL
    # Pages have no fixed daily post cap; this keeps a runaway schedule from flooding a page.
    publish_limit = Quota("facebook-publish", calls=50, per_s=3600)

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        page = request.account_id
        images = [m for m in request.media if m.lower().split("?")[0].endswith(IMAGE_SUFFIXES)]
        if images:
            url = f"{self.base_url}/{page}/photos"
            data = {"url": images[0], "caption": request.body}
        else:
            url = f"{self.base_url}/{page}/feed"
            data = {"message": request.body}
            if request.media:
                data["link"] = request.media[0]
        response = await self.send("POST", url, data=data, headers=bearer(request.access_token))
        failure = graph_failure("Facebook", response)
        if failure is not None:
            raise failure
        body = response.json()
        post_id = str(body.get("post_id") or body.get("id") or "")
        if not post_id:
            raise PermanentFailure(f"Facebook answered without a post id: {response.text[:200]}")
        return Published(post_id, f"https://www.facebook.com/{post_id}")
