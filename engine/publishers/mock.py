"""Publisher for the mock platform (`creatordeck mockstagram`, engine.mock_platform).

It behaves like a well-behaved real API: an `Idempotency-Key` header on every publish, and a
lookup by that key, so an unknown outcome is settled by asking.

Media: a URL is passed on as it is; a file is uploaded first (`POST .../media`, the raw bytes)
and its media id, checkpointed under `mock_media`, takes its place in the post. Uploading
publishes nothing (an unknown outcome there is transient), and a retry reuses the ids.
"""

from __future__ import annotations

from engine.publishers.base import Checkpoint, Published, Publisher, PublishRequest, bearer
from engine.publishers.media import prepare, read_all
from engine.resilience import (
    Failure,
    FailureKind,
    PermanentFailure,
    Quota,
    TransientFailure,
)
from storage.models import Platform


class MockPublisher(Publisher):
    platform = Platform.MOCK
    can_lookup = True
    publish_limit = Quota("mock-publish", calls=1_000_000, per_s=86_400)

    def _posts_url(self, account_id: str) -> str:
        return f"{self.base_url}/publishing/v1/{account_id}/posts"

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        media = request.media
        if media:
            media = await self._upload_files(request, checkpoint)
        response = await self.send(
            "POST",
            self._posts_url(request.account_id),
            json={"text": request.body, "media": media},
            headers={**bearer(request.access_token), "Idempotency-Key": request.idempotency_key},
        )
        failure = self.failure(response)
        if failure is not None:
            raise failure
        return _published(response.json())

    async def _upload_files(self, request: PublishRequest, checkpoint: Checkpoint) -> list[str]:
        refs = await prepare(self.client, self.platform, request.account_id, request.media)
        uploaded: dict[str, str] = dict(request.checkpoint.get("mock_media") or {})
        out: list[str] = []
        for ref in refs:
            if ref.path is None:
                out.append(ref.ref)
                continue
            if ref.ref not in uploaded:
                try:
                    response = await self.send(
                        "POST",
                        f"{self.base_url}/publishing/v1/{request.account_id}/media",
                        content=await read_all(self.client, ref),
                        headers={
                            **bearer(request.access_token),
                            "Content-Type": ref.content_type or "",
                        },
                    )
                except Failure as sent:
                    raise _upload_safe(sent) from sent
                failure = self.failure(response)
                if failure is not None:
                    raise _upload_safe(failure)
                uploaded[ref.ref] = str(response.json()["id"])
                await checkpoint({**request.checkpoint, "mock_media": uploaded})
            out.append(uploaded[ref.ref])
        return out

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


def _upload_safe(failure: Failure) -> Failure:
    """An upload publishes nothing: an unknown outcome there is merely transient."""
    if failure.kind == FailureKind.OUTCOME_UNKNOWN:
        return TransientFailure(failure.message, status=failure.status)
    return failure
