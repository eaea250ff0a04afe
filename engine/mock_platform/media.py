"""The mock's media paths for X and YouTube, shaped like the real APIs (publishers point here).

    POST /x/2/media/upload           form command=INIT|APPEND|FINALIZE (APPEND: multipart `media`)
    GET  /x/2/media/upload           ?command=STATUS&media_id=  (processing_info.state)
    POST /x/2/tweets                 {"text", "media": {"media_ids": [...]}}
    POST /youtube/upload/youtube/v3/videos?uploadType=resumable   opens a session (Location)
    PUT  /youtube/upload/youtube/v3/videos?upload_id=U            a chunk (`Content-Range:
         bytes a-b/total`) or a status query (`bytes */total`): 308 + `Range: bytes=0-n` while
         incomplete, 200 + the video once every byte arrived; bytes of a chunk that the
         session already has are ignored, a chunk that starts past them is refused (400)
    GET  /admin/media                counters: posts per platform, duplicates, chunks, drops

Instagram and Facebook (Graph API) are `media_graph.py`. Faults come from `MockConfig`
(`PUT /admin/faults`): `media_drop_every` drops the connection of every Nth upload chunk after
its bytes arrived (YouTube keeps the first half of them, as a real upload cut midway would),
`media_chunk_delay_s` slows each chunk, `media_processing_polls` answers "in progress" that many
status polls before done, `media_container_error` makes processing end in failure. The generic
faults (`inject`: latency, 503, 401, 429) apply to every call. State is in memory, like the rest.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engine.mock_platform.faults import inject, state_of

RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
STATUS_QUERY = re.compile(r"bytes \*/(\d+|\*)")


@dataclass
class Upload:
    total: int
    content_type: str
    received: int = 0
    finalized: bool = False
    polls_left: int = 0
    failed: bool = False
    result: dict[str, Any] | None = None  # the YouTube video once complete
    segments: dict[int, int] = field(default_factory=dict)  # X: segment_index -> bytes


@dataclass
class MediaState:
    """Uploads and the posts they became, per platform; shared with media_graph."""

    uploads: dict[str, Upload] = field(default_factory=dict)
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)

    def add_post(self, platform: str, post: dict[str, Any]) -> dict[str, Any]:
        self.posts.setdefault(platform, []).append(post)
        self.counters[f"{platform}_posts"] += 1
        return post

    def stats(self) -> dict[str, Any]:
        duplicates = 0
        for posts in self.posts.values():
            texts = Counter((p.get("account"), p.get("text")) for p in posts)
            duplicates += sum(n - 1 for n in texts.values() if n > 1)
        return {**self.counters, "duplicate_texts": duplicates}


def media_of(request: Request) -> MediaState:
    state: MediaState = request.app.state.media
    return state


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": message, **extra}, "detail": message}, status)


def new_id() -> str:
    return str(uuid.uuid4().int % 10**18)


def dropped(what: str) -> StreamingResponse:
    """Headers, one byte, then the connection closes: the client sees a dropped connection."""

    async def body() -> AsyncIterator[bytes]:
        yield b"{"
        raise ConnectionAbortedError(f"mockstagram: {what} dropped on purpose")

    return StreamingResponse(body(), headers={"content-length": "64"})


async def chunk_delay(request: Request) -> None:
    delay = state_of(request).config.media_chunk_delay_s
    if delay:
        await asyncio.sleep(delay)


def chunk_fault(request: Request, media: MediaState) -> bool:
    """Count one upload chunk; True when this one loses its connection. No await: the caller
    stores the chunk in the same step, so two requests never interleave a check and a write."""
    config = state_of(request).config
    media.counters["chunks"] += 1
    every = config.media_drop_every
    if every and media.counters["chunks"] % every == 0:
        media.counters["dropped"] += 1
        return True
    return False


async def form_of(request: Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """A urlencoded or multipart body as (fields, files); no multipart library needed."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}, {}
    boundary = content_type.split("boundary=", 1)[-1].strip('"').encode()
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in raw.split(b"--" + boundary):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        content = content.removesuffix(b"\r\n")
        disposition = head.decode(errors="replace")
        name = re.search(r'name="([^"]*)"', disposition)
        if name is None:
            continue
        if "filename=" in disposition:
            files[name.group(1)] = content
        else:
            fields[name.group(1)] = content.decode()
    return fields, files


def build_router() -> APIRouter:
    router = APIRouter()

    @router.post("/x/2/media/upload")
    async def x_upload(request: Request) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        media = media_of(request)
        config = state_of(request).config
        fields, files = await form_of(request)
        command = fields.get("command", "")
        if command == "INIT":
            total = int(fields.get("total_bytes") or 0)
            if total <= 0:
                return error(400, "total_bytes is required")
            media_id = new_id()
            media.uploads[media_id] = Upload(total, fields.get("media_type", ""))
            media.counters["x_uploads"] += 1
            return JSONResponse({"data": {"id": media_id, "expires_after_secs": 86400}}, 202)
        upload = media.uploads.get(fields.get("media_id", ""))
        if upload is None:
            return error(400, "unknown media_id")
        if command == "APPEND":
            chunk = files.get("media", b"")
            await chunk_delay(request)
            # A segment sent again replaces itself (X keys them by segment_index).
            upload.segments[int(fields.get("segment_index") or 0)] = len(chunk)
            upload.received = sum(upload.segments.values())
            media.counters["bytes"] += len(chunk)
            if chunk_fault(request, media):
                return dropped("APPEND")
            return Response(status_code=204)
        if command == "FINALIZE":
            if upload.received != upload.total:
                return error(400, f"got {upload.received} of {upload.total} bytes")
            upload.finalized = True
            upload.polls_left = config.media_processing_polls
            upload.failed = config.media_container_error
            data: dict[str, Any] = {"id": fields["media_id"], "size": upload.total}
            if upload.polls_left or upload.failed:
                data["processing_info"] = {"state": "pending", "check_after_secs": 1}
            return JSONResponse({"data": data})
        return error(400, f"unknown command {command!r}")

    @router.get("/x/2/media/upload")
    async def x_status(request: Request, media_id: str = "", command: str = "") -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        upload = media_of(request).uploads.get(media_id)
        if upload is None or command != "STATUS" or not upload.finalized:
            return error(400, "STATUS needs a finalized media_id")
        info: dict[str, Any] = {"state": "succeeded", "progress_percent": 100}
        if upload.polls_left > 0:
            upload.polls_left -= 1
            info = {"state": "in_progress", "check_after_secs": 1, "progress_percent": 50}
        elif upload.failed:
            info = {"state": "failed", "error": {"name": "InvalidMedia", "message": "bad codec"}}
        return JSONResponse({"data": {"id": media_id, "processing_info": info}})

    @router.post("/x/2/tweets")
    async def x_tweet(request: Request) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        media = media_of(request)
        body = json.loads(await request.body() or b"{}")
        ids = [str(i) for i in (body.get("media") or {}).get("media_ids", [])]
        for media_id in ids:
            upload = media.uploads.get(media_id)
            if upload is None or not upload.finalized or upload.polls_left or upload.failed:
                return JSONResponse({"detail": f"media {media_id} is not ready"}, 400)
        token = request.headers.get("authorization", "")[7:]
        post_id = new_id()
        media.add_post(
            "x", {"id": post_id, "account": token, "text": body.get("text"), "media": ids}
        )
        return JSONResponse({"data": {"id": post_id, "text": body.get("text")}}, 201)

    @router.post("/youtube/upload/youtube/v3/videos")
    async def yt_session(request: Request) -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        media = media_of(request)
        total = request.headers.get("x-upload-content-length", "")
        if not total.isdigit() or int(total) <= 0:
            return error(400, "X-Upload-Content-Length is required", reason="badRequest")
        metadata = json.loads(await request.body() or b"{}")
        upload_id = uuid.uuid4().hex
        upload = Upload(int(total), request.headers.get("x-upload-content-type", "video/*"))
        upload.result = {"snippet": metadata.get("snippet") or {}}
        upload.finalized = False
        media.uploads[upload_id] = upload
        media.counters["youtube_sessions"] += 1
        location = f"{request.url.remove_query_params('upload_id')}&upload_id={upload_id}"
        return Response(status_code=200, headers={"Location": location})

    @router.put("/youtube/upload/youtube/v3/videos")
    async def yt_chunk(request: Request, upload_id: str = "") -> Response:
        fault = await inject(request)
        if fault is not None:
            return fault
        media = media_of(request)
        upload = media.uploads.get(upload_id)
        if upload is None:
            return error(404, "upload session not found", reason="notFound")
        content_range = request.headers.get("content-range", "")
        body = await request.body()
        if STATUS_QUERY.fullmatch(content_range) or upload.finalized:
            return _yt_state(media, upload, upload_id)
        match = RANGE.fullmatch(content_range)
        if match is None:
            return error(400, f"bad Content-Range {content_range!r}", reason="badRequest")
        start = int(match.group(1))
        if len(body) != int(match.group(2)) - start + 1:
            return error(400, "the chunk's length differs from its Content-Range")
        media.counters["youtube_bytes_sent"] += len(body)  # overlaps included
        await chunk_delay(request)
        if await request.is_disconnected():  # the client died while we held the chunk
            media.counters["abandoned"] += 1
            return Response(status_code=499)
        # From here on no await: check the offset and store in one step.
        if start > upload.received:
            return error(400, f"expected bytes from {upload.received}", reason="badRequest")
        fresh = body[upload.received - start :]  # bytes already persisted are ignored
        if chunk_fault(request, media):
            kept = len(fresh) // 2
            upload.received += kept
            media.counters["bytes"] += kept
            return dropped("resumable chunk")
        upload.received += len(fresh)
        media.counters["bytes"] += len(fresh)
        return _yt_state(media, upload, upload_id)

    @router.get("/admin/media")
    async def media_stats(request: Request) -> dict[str, Any]:
        return media_of(request).stats()

    return router


def _yt_state(media: MediaState, upload: Upload, upload_id: str) -> Response:
    if upload.received < upload.total:
        headers = {"Range": f"bytes=0-{upload.received - 1}"} if upload.received else {}
        return Response(status_code=308, headers=headers)
    if not upload.finalized:
        upload.finalized = True
        snippet = (upload.result or {}).get("snippet") or {}
        video = {"id": uuid.uuid4().hex[:11], "snippet": snippet, "upload": upload_id}
        upload.result = video
        media.add_post("youtube", {**video, "text": snippet.get("description")})
    return JSONResponse(upload.result or {}, 200)
