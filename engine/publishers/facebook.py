"""Facebook Pages: `POST /{page-id}/feed` (text, link), `/{page-id}/photos` or `/{page-id}/videos`.

Sources: https://developers.facebook.com/docs/graph-api/reference/page/photos/ and
https://developers.facebook.com/docs/video-api/guides/publishing (non-resumable, up to 1 GB).
A photo or video from a URL is sent as `url` / `file_url` (Facebook fetches it); from a file, as
the multipart `source`, streamed from the open file by httpx (64 KiB reads), never held whole.
The media is checked again before sending.

The token is a Page access token. Graph API errors carry a `code`: 190/102 mean the token is
invalid or expired; 4/17/32/613/80001 are rate limits; `is_transient` (or code 1/2) says retry.
Facebook offers no idempotency key: an unknown outcome goes to a person.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import BinaryIO

import httpx

from engine.publishers.base import (
    AMBIGUOUS_STATUSES,
    Checkpoint,
    Published,
    Publisher,
    PublishRequest,
    bearer,
)
from engine.publishers.media import prepare
from engine.resilience import (
    AuthFailure,
    Failure,
    OutcomeUnknown,
    PermanentFailure,
    Quota,
    TransientFailure,
)
from storage.models import Platform
from storage.queries.publishing.media_rules import Kind

GRAPH_URL = "https://graph.facebook.com/v21.0"
AUTH_CODES = frozenset({102, 190})
RATE_CODES = frozenset({4, 17, 32, 613, 80001})
TRANSIENT_CODES = frozenset({1, 2})


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
        refs = await prepare(self.client, Platform.FACEBOOK, page, request.media)
        stack = ExitStack()  # the open media file, closed once the request is sent
        files: dict[str, tuple[str, BinaryIO, str]] | None = None
        media = refs[0] if refs else None
        if media is None or media.kind is Kind.LINK:
            url = f"{self.base_url}/{page}/feed"
            data = {"message": request.body}
            if media is not None:
                data["link"] = media.ref
        else:
            photo = media.kind is Kind.IMAGE
            url = f"{self.base_url}/{page}/{'photos' if photo else 'videos'}"
            data = {"caption" if photo else "description": request.body}
            if media.path is not None:
                try:
                    handle = stack.enter_context(media.path.open("rb"))
                except FileNotFoundError as exc:
                    raise PermanentFailure(f"media file {media.path} vanished") from exc
                files = {"source": (media.name, handle, media.content_type or "")}
            else:
                data["url" if photo else "file_url"] = media.ref
        with stack:
            response = await self.send(
                "POST", url, data=data, files=files, headers=bearer(request.access_token)
            )
        failure = graph_failure("Facebook", response)
        if failure is not None:
            raise failure
        body = response.json()
        post_id = str(body.get("post_id") or body.get("id") or "")
        if not post_id:
            raise PermanentFailure(f"Facebook answered without a post id: {response.text[:200]}")
        return Published(post_id, f"https://www.facebook.com/{post_id}")
