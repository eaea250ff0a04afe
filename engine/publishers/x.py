"""X API v2: `POST /2/tweets` with an OAuth 2.0 user token (scopes tweet.write, users.read,
media.write), media uploaded first (x_media: chunked INIT/APPEND/FINALIZE, STATUS polling).

X offers no idempotency key and no lookup by one: an unknown outcome of the post itself goes to
a person. The uploads publish nothing, so their failures are only transient, and each media id
is checkpointed once processed: a retry posts with it instead of uploading again.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from engine.publishers import x_media
from engine.publishers.base import Checkpoint, Published, Publisher, PublishRequest, bearer
from engine.resilience import Failure, PermanentFailure, Quota, TransientFailure
from storage.models import Platform


class XPublisher(Publisher):
    platform = Platform.X
    default_base_url = "https://api.x.com"
    # Per user: 100 posts per 24 h on the Basic tier (the app's tier may allow more).
    publish_limit = Quota("x-publish", calls=100, per_s=86_400)

    chunk_bytes = x_media.CHUNK_BYTES
    max_poll_s = x_media.MAX_POLL_S

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        payload: dict[str, Any] = {"text": request.body}
        if request.media:
            ids = await x_media.upload_all(self, request, checkpoint, x_failure)
            payload["media"] = {"media_ids": ids}
        response = await self.send(
            "POST",
            f"{self.base_url}/2/tweets",
            json=payload,
            headers=bearer(request.access_token),
        )
        failure = x_failure(self, response)
        if failure is not None:
            raise failure
        data = response.json().get("data") or {}
        if "id" not in data:
            raise PermanentFailure(f"X answered without a post id: {response.text[:200]}")
        post_id = str(data["id"])
        return Published(post_id, f"https://x.com/i/web/status/{post_id}")


def x_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"X HTTP {response.status_code}"
    detail = body.get("detail") or body.get("title")
    if not detail and body.get("errors"):
        detail = "; ".join(str(e.get("message", e)) for e in body["errors"])
    return f"X HTTP {response.status_code}: {detail or response.text[:200]}"


def x_failure(publisher: Publisher, response: httpx.Response) -> Failure | None:
    if response.status_code < 400:
        return None
    message = x_message(response)
    if response.status_code == 403:
        # X says 403 for duplicate content and for actions the app may not take: not a token issue.
        return PermanentFailure(message, status=403)
    if response.status_code == 429:
        reset = response.headers.get("x-rate-limit-reset")
        wait = max(float(reset) - time.time(), 1.0) if reset and reset.isdigit() else None
        return TransientFailure(message, status=429, retry_after_s=wait, rate_limited=True)
    return publisher.failure(response, message)
