"""Instagram Graph API: create a media container, poll it until FINISHED, then `media_publish`.

Source: https://developers.facebook.com/docs/instagram-platform/content-publishing

Instagram fetches the media itself from the public URL it is given (media_rules refuses files).
The container id is saved as a checkpoint before publishing. A container can be published only
once, and its `status_code` turns PUBLISHED when it was: that is the lookup after an unknown
outcome. Creating a container is safe to repeat (an unpublished container is never shown and
expires after 24 h). Every container is polled (`status_code`) until FINISHED: ERROR or EXPIRED
is a PermanentFailure; still IN_PROGRESS after POLL_TRIES polls is transient, and the retry polls
the same checkpointed container instead of creating another.
"""

from __future__ import annotations

import asyncio

from engine.publishers.base import Checkpoint, Published, Publisher, PublishRequest, bearer
from engine.publishers.facebook import GRAPH_URL, graph_failure
from engine.publishers.media import prepare
from engine.resilience import (
    Failure,
    FailureKind,
    PermanentFailure,
    Quota,
    TransientFailure,
)
from storage.models import Platform

VIDEO_SUFFIXES = (".mp4", ".mov")
POLL_TRIES = 10
POLL_S = 2.0


class InstagramPublisher(Publisher):
    platform = Platform.INSTAGRAM
    can_lookup = True
    default_base_url = GRAPH_URL
    # Instagram's content publishing limit: 100 API-published posts per account per 24 h.
    publish_limit = Quota("instagram-publish", calls=100, per_s=86_400)
    poll_s = POLL_S

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        if not request.media:
            raise PermanentFailure("Instagram needs an image or a video: add its URL as media")
        await prepare(self.client, Platform.INSTAGRAM, request.account_id, request.media)
        headers = bearer(request.access_token)
        container = str(request.checkpoint.get("container_id") or "")
        if container:  # an earlier attempt's container: reuse it unless it is spoilt
            status = await self._status(container, headers)
            if status == "PUBLISHED":  # an earlier attempt published it: never publish twice
                found = await self.lookup(request)
                return found or Published(f"container:{container}", None)
            if status in ("ERROR", "EXPIRED"):
                container = ""
        if not container:
            container = await self._create_container(request)
            await checkpoint({**request.checkpoint, "container_id": container})
        await self._wait_finished(container, headers)
        response = await self.send(
            "POST",
            f"{self.base_url}/{request.account_id}/media_publish",
            data={"creation_id": container},
            headers=headers,
        )
        failure = graph_failure("Instagram", response)
        if failure is not None:
            raise failure
        media_id = str(response.json().get("id") or "")
        if not media_id:
            raise PermanentFailure(f"Instagram answered without a media id: {response.text[:200]}")
        return Published(media_id, await self._permalink(media_id, headers))

    async def _create_container(self, request: PublishRequest) -> str:
        media = request.media[0]
        data = {"caption": request.body}
        if _is_video(media):
            data.update(media_type="REELS", video_url=media)
        else:
            data["image_url"] = media
        try:
            response = await self.send(
                "POST",
                f"{self.base_url}/{request.account_id}/media",
                data=data,
                headers=bearer(request.access_token),
            )
        except Failure as sent:
            raise _safe_to_repeat(sent) from sent
        failure = graph_failure("Instagram", response)
        if failure is not None:
            raise _safe_to_repeat(failure)
        container = str(response.json().get("id") or "")
        if not container:
            raise PermanentFailure(f"Instagram gave no container id: {response.text[:200]}")
        return container

    async def _status(self, container: str, headers: dict[str, str]) -> str:
        response = await self.send(
            "GET",
            f"{self.base_url}/{container}",
            params={"fields": "status_code"},
            headers=headers,
        )
        failure = graph_failure("Instagram", response)
        if failure is not None:
            raise failure
        return str(response.json().get("status_code", ""))

    async def _wait_finished(self, container: str, headers: dict[str, str]) -> None:
        for _ in range(POLL_TRIES):
            status = await self._status(container, headers)
            if status == "FINISHED":
                return
            if status in ("ERROR", "EXPIRED"):
                raise PermanentFailure(f"Instagram could not process the video ({status})")
            await asyncio.sleep(self.poll_s)
        raise TransientFailure("Instagram is still processing the video; trying again later")

    async def _permalink(self, media_id: str, headers: dict[str, str]) -> str | None:
        try:
            response = await self.send(
                "GET",
                f"{self.base_url}/{media_id}",
                params={"fields": "permalink"},
                headers=headers,
            )
        except Failure:
            return None
        if response.status_code >= 400:
            return None
        permalink = response.json().get("permalink")
        return str(permalink) if permalink else None

    async def lookup(self, request: PublishRequest) -> Published | None:
        container = request.checkpoint.get("container_id")
        if not container:
            return None  # no container, so nothing can have been published
        headers = bearer(request.access_token)
        if await self._status(str(container), headers) != "PUBLISHED":
            return None
        # Published: find the media it became among the account's latest.
        response = await self.send(
            "GET",
            f"{self.base_url}/{request.account_id}/media",
            params={"fields": "id,caption,permalink", "limit": "25"},
            headers=headers,
        )
        if response.status_code < 400:
            for media in response.json().get("data", []):
                if media.get("caption") == request.body:
                    return Published(str(media["id"]), media.get("permalink"))
        return Published(f"container:{container}", None)


def _is_video(url: str) -> bool:
    return url.lower().split("?")[0].endswith(VIDEO_SUFFIXES)


def _safe_to_repeat(failure: Failure) -> Failure:
    """Container creation publishes nothing: an unknown outcome there is just transient."""
    if failure.kind == FailureKind.OUTCOME_UNKNOWN:
        return TransientFailure(failure.message, status=failure.status)
    return failure
