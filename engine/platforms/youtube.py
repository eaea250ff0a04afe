"""YouTube Data API v3: `channels.list?part=statistics`, up to 50 channel ids per call.

Shape (documented): `{"etag": "...", "items": [{"id": "UC…", "etag": "...", "statistics":
{"viewCount": "…", "subscriberCount": "…", "hiddenSubscriberCount": false, "videoCount": "…"}}]}`.
Counts are strings. An id missing from `items` no longer exists. Each item has its own ETag:
an unchanged ETag is "not modified" (no sample written). A single-id call also sends
If-None-Match, which YouTube answers with 304. Quota errors come as 403 with a reason.
The API key travels in the `X-goog-api-key` header, never in the URL (URLs end up in logs).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from engine.platforms.base import Adapter, BatchResult, Observed, as_int
from engine.resilience import (
    AuthFailure,
    Failure,
    NotFound,
    Quota,
    TransientFailure,
    classify_response,
)
from storage.queries.creators import FetchTarget

API = "https://www.googleapis.com/youtube/v3/channels"
QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
KEY_REASONS = {"keyInvalid", "keyExpired", "forbidden", "accessNotConfigured", "API_KEY_INVALID"}


class YouTubeAdapter(Adapter):
    platform = "youtube"
    max_batch = 50

    def __init__(self, quota: Quota, api_key: str, base_url: str = API) -> None:
        super().__init__(quota)
        self.headers = {"X-goog-api-key": api_key}
        self.base_url = base_url

    async def fetch(self, client: httpx.AsyncClient, targets: Sequence[FetchTarget]) -> BatchResult:
        params = {
            "part": "statistics",
            "id": ",".join(t.external_id for t in targets),
            "maxResults": "50",
        }
        headers = dict(self.headers)
        if len(targets) == 1 and targets[0].etag:
            headers["If-None-Match"] = targets[0].etag
        response = await client.get(self.base_url, params=params, headers=headers)
        result = BatchResult()
        if response.status_code == 304:
            result.not_modified.extend(t.creator_id for t in targets)
            return result
        if response.status_code >= 400:
            raise _failure(response)
        items = {item.get("id"): item for item in response.json().get("items", [])}
        for target in targets:
            item = items.get(target.external_id)
            if item is None:
                result.failures[target.creator_id] = NotFound(
                    f"YouTube channel {target.external_id} not found", status=404
                )
                continue
            etag = item.get("etag")
            if etag and etag == target.etag:
                result.not_modified.append(target.creator_id)
                continue
            stats = item.get("statistics", {})
            hidden = bool(stats.get("hiddenSubscriberCount"))
            result.observed[target.creator_id] = Observed(
                followers=None if hidden else as_int(stats.get("subscriberCount")),
                following=None,
                posts=as_int(stats.get("videoCount")),
                views=as_int(stats.get("viewCount")),
                etag=etag,
            )
        return result


def _failure(response: httpx.Response) -> Failure:
    reasons: set[str] = set()
    message = f"HTTP {response.status_code}"
    try:
        error = response.json().get("error", {})
        message = f"HTTP {response.status_code}: {error.get('message', '')}"
        reasons = {e.get("reason", "") for e in error.get("errors", [])}
        reasons |= {d.get("reason", "") for d in error.get("details", []) if isinstance(d, dict)}
    except ValueError:
        pass
    if reasons & QUOTA_REASONS:
        # The daily quota resets at midnight Pacific: defer, never spin.
        return TransientFailure(
            message, status=response.status_code, retry_after_s=3600, rate_limited=True
        )
    if reasons & RATE_REASONS:
        return TransientFailure(
            message, status=response.status_code, retry_after_s=60, rate_limited=True
        )
    if reasons & KEY_REASONS or response.status_code in (401, 403):
        return AuthFailure(message, status=response.status_code)
    failure = classify_response(response)
    return failure if failure is not None else TransientFailure(message)
