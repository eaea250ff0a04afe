"""Mockstagram adapter: batch lookup with per-creator ETags, or a single conditional GET."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from engine.platforms.base import Adapter, BatchResult, Observed, as_int
from engine.resilience import NotFound, Quota, classify_response, classify_status
from storage.queries.creators import FetchTarget


class MockAdapter(Adapter):
    platform = "mock"
    max_batch = 500

    def __init__(self, quota: Quota, base_url: str, token: str, max_batch: int = 500) -> None:
        super().__init__(quota)
        self.max_batch = max_batch
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def fetch(self, client: httpx.AsyncClient, targets: Sequence[FetchTarget]) -> BatchResult:
        if len(targets) == 1:
            return await self._single(client, targets[0])
        body = {
            "ids": [t.external_id for t in targets],
            "etags": {t.external_id: t.etag for t in targets if t.etag},
        }
        response = await client.post(
            f"{self.base_url}/v1/users/batch", json=body, headers=self.headers
        )
        failure = classify_response(response)
        if failure is not None:
            raise failure
        payload = response.json()
        by_external = {t.external_id: t.creator_id for t in targets}
        result = BatchResult()
        for item in payload.get("data", []):
            creator_id = by_external.get(str(item.get("id")))
            if creator_id is not None:
                result.observed[creator_id] = _observed(item, item.get("etag"))
        for external_id in payload.get("not_modified", []):
            creator_id = by_external.get(str(external_id))
            if creator_id is not None:
                result.not_modified.append(creator_id)
        for error in payload.get("errors", []):
            creator_id = by_external.get(str(error.get("id")))
            status = as_int(error.get("status")) or 500
            item_failure = classify_status(status, detail=str(error.get("message", "")))
            if creator_id is not None and item_failure is not None:
                result.failures[creator_id] = item_failure
        return result

    async def _single(self, client: httpx.AsyncClient, target: FetchTarget) -> BatchResult:
        headers = dict(self.headers)
        if target.etag:
            headers["If-None-Match"] = target.etag
        response = await client.get(
            f"{self.base_url}/v1/users/{target.external_id}", headers=headers
        )
        result = BatchResult()
        if response.status_code == 304:
            result.not_modified.append(target.creator_id)
            return result
        failure = classify_response(response)
        if isinstance(failure, NotFound):
            result.failures[target.creator_id] = failure
            return result
        if failure is not None:
            raise failure
        item = response.json()
        result.observed[target.creator_id] = _observed(item, response.headers.get("etag"))
        return result


def _observed(item: dict[str, object], etag: object) -> Observed:
    return Observed(
        followers=as_int(item.get("followers")),
        following=as_int(item.get("following")),
        posts=as_int(item.get("posts")),
        views=as_int(item.get("views")),
        etag=str(etag) if etag else None,
    )
