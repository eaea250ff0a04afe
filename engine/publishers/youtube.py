"""YouTube Data API v3: `videos.insert` as a resumable upload (metadata first, then the bytes).

Source: https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol

The post's one media reference is the video: a file or a URL, streamed in chunks of
CHUNK_BYTES (a multiple of 256 KiB, as the protocol asks), never held whole. The body becomes the
description, its first line the title. The upload session URL is saved with `checkpoint()`
before any byte is sent. When a chunk's connection drops (or answers 5xx), the session is asked
what it has (`Content-Range: bytes */total` -> 308 `Range: bytes=0-N`) and the upload continues
from N + 1, up to MAX_RESUMES times per attempt; after that, or when the session cannot be asked,
the outcome is unknown. A later attempt (another process after a kill) first looks the session
up (complete: that is the video), then resumes the same session rather than opening another, so
one post is one session and one video; only an expired session (404/410, which can never become
a video) is replaced by a new one. `quotaExceeded` (videos.insert costs 1,600 of 10,000 daily
units) defers.
"""

from __future__ import annotations

import httpx

from engine.publishers.base import Checkpoint, Published, Publisher, PublishRequest, bearer
from engine.publishers.media import MediaRef, chunks, prepare
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

CHUNK_BYTES = 32 * 256 * 1024  # 8 MiB
MAX_RESUMES = 5
RESUMABLE_STATUSES = frozenset({500, 502, 503, 504})
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

    chunk_bytes = CHUNK_BYTES
    max_resumes = MAX_RESUMES

    async def publish(self, request: PublishRequest, checkpoint: Checkpoint) -> Published:
        refs = await prepare(
            self.client, Platform.YOUTUBE, request.account_id, request.media, measure=True
        )
        video = refs[0]
        if video.size is None:
            raise PermanentFailure(f"cannot learn the size of {video.ref} (no Content-Length)")
        headers = bearer(request.access_token)
        upload_url = str(request.checkpoint.get("upload_url") or "")
        offset: int | None = None
        if upload_url:  # an earlier attempt's session: resume it where it stopped
            known = await self._received(upload_url, video.size, headers)
            if isinstance(known, Published):
                return known
            offset = known
        if offset is None:
            upload_url = await self._open_session(request, video.content_type, video.size)
            await checkpoint({**request.checkpoint, "upload_url": upload_url})
            offset = 0
        for _ in range(self.max_resumes + 1):
            try:
                return await self._send_from(upload_url, video, offset, headers)
            except _Dropped as dropped:
                why = dropped.reason
            try:
                known = await self._received(upload_url, video.size, headers)
            except Failure as failure:
                raise OutcomeUnknown(
                    f"upload interrupted ({why}) and its state unknown: {failure.message}"
                ) from failure
            if isinstance(known, Published):
                return known  # the last chunk did arrive
            if known is None:
                raise TransientFailure(f"upload session expired after {why}; starting a new one")
            offset = known
        raise OutcomeUnknown(f"upload interrupted {self.max_resumes + 1} times; last: {why}")

    async def _open_session(
        self, request: PublishRequest, content_type: str | None, size: int
    ) -> str:
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
                headers={
                    **bearer(request.access_token),
                    "X-Upload-Content-Type": content_type or "video/*",
                    "X-Upload-Content-Length": str(size),
                },
            )
        except Failure as sent:
            raise _session_safe(sent) from sent
        failure = youtube_failure(self, session)
        if failure is not None:
            raise _session_safe(failure)
        upload_url = session.headers.get("location")
        if not upload_url:
            raise PermanentFailure("YouTube opened no upload session (no Location header)")
        return str(upload_url)

    async def _send_from(
        self, upload_url: str, video: MediaRef, offset: int, headers: dict[str, str]
    ) -> Published:
        """Send the bytes from `offset` in chunks; the video once the last one is taken."""
        total = video.size or 0
        position = offset
        async for chunk in chunks(self.client, video, offset, self.chunk_bytes):
            end = position + len(chunk) - 1
            try:
                response = await self.client.put(
                    upload_url,
                    content=chunk,
                    headers={**headers, "Content-Range": f"bytes {position}-{end}/{total}"},
                )
            except httpx.HTTPError as exc:
                raise _Dropped(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code in (200, 201):
                return _video(response)
            if response.status_code in RESUMABLE_STATUSES:
                raise _Dropped(f"YouTube HTTP {response.status_code}")
            if response.status_code != 308:
                failure = youtube_failure(self, response)
                raise failure or PermanentFailure(f"YouTube chunk {response.status_code}")
            position = _next_byte(response)
        raise PermanentFailure(f"{video.ref} ended at byte {position} of {total}: it changed")

    async def _received(
        self, upload_url: str, total: int, headers: dict[str, str]
    ) -> Published | int | None:
        """Ask the session: the video when complete, the next byte it wants, or None (expired)."""
        response = await self.send(
            "PUT", upload_url, headers={**headers, "Content-Range": f"bytes */{total}"}, content=b""
        )
        if response.status_code in (200, 201):
            return _video(response)
        if response.status_code == 308:
            return _next_byte(response)
        if response.status_code in (404, 410):
            return None
        failure = youtube_failure(self, response)
        raise failure or PermanentFailure(f"YouTube upload status {response.status_code}")

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


class _Dropped(Exception):
    """A chunk whose answer never came (or came as a 5xx): ask the session what it has."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _next_byte(response: httpx.Response) -> int:
    """From a 308's `Range: bytes=0-N`: N + 1 (no Range: nothing received yet)."""
    received = response.headers.get("range", "")
    if "-" not in received:
        return 0
    return int(received.rsplit("-", 1)[1]) + 1


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
