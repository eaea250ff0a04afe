"""YouTube Data API v3: `videos.insert` as a resumable upload (metadata first, then the bytes).

The post's first media reference is the video's URL (streamed, never stored); the body becomes
the description, its first line the title. The upload session URL is saved as a checkpoint:
asking it `Content-Range: bytes */*` answers the video when the upload completed — the lookup
after an unknown outcome. A new attempt opens a new session, so an unfinished one never becomes a
second video. `quotaExceeded` (videos.insert costs 1,600 of 10,000 daily units) defers.
"""

from __future__ import annotations

import httpx

from engine.publishers.base import Checkpoint, Published, Publisher, PublishRequest, bearer
from engine.resilience import (
    AuthFailure,
    Failure,
    FailureKind,
    OutcomeUnknown,
    PermanentFailure,
    Quota,
    TransientFailure,
)
from storage.models import Platform

QUOTA_REASONS = frozenset({"quotaExceeded", "uploadLimitExceeded", "rateLimitExceeded"})
TITLE_MAX = 100


def youtube_failure(publisher: Publisher, response: httpx.Response) -> Failure | None:
    if response.status_code < 400:
        return None
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    reasons = {str(e.get("reason")) for e in error.get("errors", []) if isinstance(e, dict)}
    message = f"YouTube HTTP {response.status_code}: {error.get('message') or response.text[:200]}"
    if reasons & QUOTA_REASONS:
        # The daily quota resets at midnight Pacific time; look again in an hour.
        return TransientFailure(
            message, status=response.status_code, retry_after_s=3600.0, rate_limited=True
        )
    if response.status_code == 401:
        return AuthFailure(message, status=401)
    if response.status_code == 403:
        return PermanentFailure(message, status=403)  # forbidden for this channel, not the token
    return publisher.failure(response, message)


def title_of(body: str) -> str:
    first = body.strip().splitlines()[0] if body.strip() else "Untitled"
    clean = first.replace("<", "").replace(">", "").strip() or "Untitled"
    return clean[:TITLE_MAX]


class YouTubePublisher(Publisher):
    platform = Platform.YOUTUBE
    can_lookup = True
    default_base_url = "https://www.googleapis.com"
    # Default project quota 10,000 units/day, videos.insert = 1,600 units: 6 uploads a day.
    publish_limit = Quota("youtube-publish", calls=6, per_s=86_400)

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        if not request.media:
            raise PermanentFailure("YouTube needs a video: add the video's URL as media")
        headers = bearer(request.access_token)
        metadata = {
            "snippet": {
                "title": title_of(request.body),
                "description": request.body[:5000],
                "categoryId": "22",
            },
            "status": {"privacyStatus": "public", "selfDeclaredMadeForKids": False},
        }
        try:
            session = await self.send(
                "POST",
                f"{self.base_url}/upload/youtube/v3/videos",
                params={"uploadType": "resumable", "part": "snippet,status"},
                json=metadata,
                headers={**headers, "X-Upload-Content-Type": "video/*"},
            )
        except Failure as sent:
            raise _session_safe(sent) from sent
        failure = youtube_failure(self, session)
        if failure is not None:
            raise _session_safe(failure)
        upload_url = session.headers.get("location")
        if not upload_url:
            raise PermanentFailure("YouTube opened no upload session (no Location header)")
        await checkpoint({"upload_url": upload_url})
        try:
            async with self.client.stream("GET", request.media[0]) as source:
                if source.status_code >= 400:
                    raise PermanentFailure(
                        f"cannot read the video at {request.media[0]} (HTTP {source.status_code})"
                    )
                length = source.headers.get("content-length")
                upload_headers = {**headers, "Content-Type": "video/*"}
                if length:
                    upload_headers["Content-Length"] = length
                response = await self.client.put(
                    upload_url, content=source.aiter_raw(), headers=upload_headers
                )
        except httpx.HTTPError as exc:
            raise OutcomeUnknown(f"upload interrupted: {type(exc).__name__}: {exc}") from exc
        failure = youtube_failure(self, response)
        if failure is not None:
            raise failure
        return _video(response)

    async def lookup(self, request: PublishRequest) -> Published | None:
        upload_url = request.checkpoint.get("upload_url")
        if not upload_url:
            return None
        response = await self.send(
            "PUT",
            str(upload_url),
            headers={**bearer(request.access_token), "Content-Range": "bytes */*"},
            content=b"",
        )
        if response.status_code in (200, 201):
            return _video(response)
        if response.status_code in (308, 404, 410):
            return None  # incomplete or expired: that session made no video
        failure = youtube_failure(self, response)
        raise failure or PermanentFailure(f"YouTube upload status {response.status_code}")


def _video(response: httpx.Response) -> Published:
    video_id = str(response.json().get("id") or "")
    if not video_id:
        raise PermanentFailure(f"YouTube answered without a video id: {response.text[:200]}")
    return Published(video_id, f"https://www.youtube.com/watch?v={video_id}")


def _session_safe(failure: Failure) -> Failure:
    """Opening an upload session uploads nothing: an unknown outcome there is transient."""
    if failure.kind == FailureKind.OUTCOME_UNKNOWN:
        return TransientFailure(failure.message, status=failure.status)
    return failure
