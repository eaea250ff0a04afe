"""Publisher for the mock platform (`creatordeck mockstagram`, engine.mock_platform).

It behaves like a well-behaved real API: an `Idempotency-Key` header on every publish, and a
lookup by that key, so an unknown outcome is settled by asking.
"""

from __future__ import annotations

from engine.publishers.base import Checkpoint, Published, Publisher, PublishRequest, bearer
from engine.resilience import PermanentFailure, Quota
from storage.models import Platform


class MockPublisher(Publisher):
    platform = Platform.MOCK
    can_lookup = True
    publish_limit = Quota("mock-publish", calls=1_000_000, per_s=86_400)

    def _posts_url(self, account_id: str) -> str:
        return f"{self.base_url}/publishing/v1/{account_id}/posts"

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        response = await self.send(
            "POST",
            self._posts_url(request.account_id),
            json={"text": request.body, "media": request.media},
            headers={**bearer(request.access_token), "Idempotency-Key": request.idempotency_key},
        )
        failure = self.failure(response)
        if failure is not None:
            raise failure
        return _published(response.json())

    async def lookup(self, request: PublishRequest) -> Published | None:
        response = await self.send(
            "GET",
            self._posts_url(request.account_id),
            params={"idempotency_key": request.idempotency_key},
            headers=bearer(request.access_token),
        )
        failure = self.failure(response)
        if failure is not None:
            raise failure
        found = response.json().get("data") or []
        return _published(found[0]) if found else None


def _published(data: object) -> Published:
    if not isinstance(data, dict) or "id" not in data:
        raise PermanentFailure(f"mock platform answered without a post id: {data!r:.200}")
    return Published(external_id=str(data["id"]), url=data.get("url"))
