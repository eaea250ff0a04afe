"""Instagram Graph API business discovery: another professional account's public counts.

`GET /{our-ig-user-id}?fields=business_discovery.username(NAME){followers_count,
follows_count,media_count}` — one account per call (the creator's `external_id` is its
username). Errors (documented): `{"error": {"message", "type", "code", "error_subcode"}}`;
code 190 = the access token is invalid or expired; 4/17/32/613 = rate limited; 110 or
subcode 2207013 = no such (business) account. The access token travels in the
`Authorization: Bearer` header, never in the URL (URLs end up in logs).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from engine.platforms.base import Adapter, BatchResult, Observed, as_int
from engine.resilience import (
    AuthFailure,
    Failure,
    NotFound,
    PermanentFailure,
    Quota,
    TransientFailure,
    classify_response,
)
from storage.queries.creators import FetchTarget

API = "https://graph.facebook.com/v21.0"
RATE_CODES = {4, 17, 32, 613}
FIELDS = "business_discovery.username({name}){{followers_count,follows_count,media_count}}"


class InstagramAdapter(Adapter):
    platform = "instagram"
    max_batch = 1

    def __init__(self, quota: Quota, access_token: str, ig_user_id: str, base_url: str = API):
        super().__init__(quota)
        self.headers = {"Authorization": f"Bearer {access_token}"}
        self.url = f"{base_url.rstrip('/')}/{ig_user_id}"

    async def fetch(self, client: httpx.AsyncClient, targets: Sequence[FetchTarget]) -> BatchResult:
        result = BatchResult()
        for target in targets:
            params = {"fields": FIELDS.format(name=target.external_id)}
            response = await client.get(self.url, params=params, headers=self.headers)
            if response.status_code >= 400:
                failure = _failure(response)
                if isinstance(failure, NotFound):
                    result.failures[target.creator_id] = failure
                    continue
                raise failure
            found = response.json().get("business_discovery", {})
            result.observed[target.creator_id] = Observed(
                followers=as_int(found.get("followers_count")),
                following=as_int(found.get("follows_count")),
                posts=as_int(found.get("media_count")),
                views=None,
            )
        return result


def _failure(response: httpx.Response) -> Failure:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = as_int(error.get("code"))
    subcode = as_int(error.get("error_subcode"))
    message = f"HTTP {response.status_code}: {error.get('message', '')}"
    if code == 190:
        return AuthFailure(message, status=401)
    if code in RATE_CODES:
        return TransientFailure(message, status=429, retry_after_s=60, rate_limited=True)
    if code == 110 or subcode == 2207013:
        return NotFound(message, status=404)
    failure = classify_response(response)
    return failure if failure is not None else PermanentFailure(message)
