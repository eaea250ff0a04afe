"""X API v2 user lookup: `GET /2/users?ids=…&user.fields=public_metrics`, up to 100 ids.

Shape (documented): `{"data": [{"id", "username", "public_metrics": {"followers_count",
"following_count", "tweet_count", "listed_count"}}], "errors": [{"value" | "resource_id",
"title", "detail", "type"}]}`. Unknown or suspended users come back in `errors`; 429 carries
`x-rate-limit-reset` (epoch seconds) rather than Retry-After. X has no ETag: every answer is
a sample.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

from engine.platforms.base import Adapter, BatchResult, Observed, as_int
from engine.resilience import (
    AuthFailure,
    NotFound,
    PermanentFailure,
    Quota,
    TransientFailure,
    classify_response,
)
from storage.queries.creators import FetchTarget

API = "https://api.x.com/2/users"


class XAdapter(Adapter):
    platform = "x"
    max_batch = 100

    def __init__(self, quota: Quota, bearer_token: str, base_url: str = API) -> None:
        super().__init__(quota)
        self.headers = {"Authorization": f"Bearer {bearer_token}"}
        self.base_url = base_url

    async def fetch(self, client: httpx.AsyncClient, targets: Sequence[FetchTarget]) -> BatchResult:
        params = {
            "ids": ",".join(t.external_id for t in targets),
            "user.fields": "public_metrics",
        }
        response = await client.get(self.base_url, params=params, headers=self.headers)
        if response.status_code == 429:
            reset = as_int(response.headers.get("x-rate-limit-reset"))
            wait = max(reset - time.time(), 1.0) if reset else None
            raise TransientFailure(
                "HTTP 429 rate limited", status=429, retry_after_s=wait, rate_limited=True
            )
        failure = classify_response(response)
        if failure is not None:
            raise failure
        payload = response.json()
        by_external = {t.external_id: t.creator_id for t in targets}
        result = BatchResult()
        for user in payload.get("data", []) or []:
            creator_id = by_external.get(str(user.get("id")))
            if creator_id is None:
                continue
            metrics = user.get("public_metrics", {})
            result.observed[creator_id] = Observed(
                followers=as_int(metrics.get("followers_count")),
                following=as_int(metrics.get("following_count")),
                posts=as_int(metrics.get("tweet_count")),
                views=None,
            )
        for error in payload.get("errors", []) or []:
            external = str(error.get("resource_id") or error.get("value") or "")
            creator_id = by_external.get(external)
            if creator_id is None:
                continue
            detail = str(error.get("detail") or error.get("title") or "error")
            kind = str(error.get("type", ""))
            if kind.endswith("resource-not-found") or "suspended" in detail.lower():
                result.failures[creator_id] = NotFound(detail, status=404)
            elif "authorization" in kind.lower() or "not-authorized" in kind:
                result.failures[creator_id] = AuthFailure(detail, status=401)
            else:
                result.failures[creator_id] = PermanentFailure(detail, status=400)
        return result
