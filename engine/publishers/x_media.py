"""X media upload: `POST /2/media/upload` INIT, APPEND (chunks), FINALIZE, then STATUS polling.

Source: https://docs.x.com/x-api/media/quickstart/media-upload-chunked (segments up to 5 MB,
`processing_info.state` pending/in_progress/succeeded/failed with `check_after_secs`).

Uploading publishes nothing, so every failure here is at worst transient (an unknown outcome of
an upload call is safe to repeat): an APPEND whose connection dropped is sent again with the same
`segment_index` (X keeps one copy per index), up to APPEND_TRIES times; then the attempt retries
later. Each media id is checkpointed under `x_media` (reference -> id, finalized, ready) so a
later attempt reuses a finalized upload (polls it again) or a ready one (posts with it at once)
instead of uploading again. Cost per item: 2 + ceil(size / CHUNK_BYTES) requests + STATUS polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from engine.publishers.base import Checkpoint, Publisher, PublishRequest, bearer
from engine.publishers.media import MediaRef, chunks, prepare
from engine.resilience import (
    Failure,
    FailureKind,
    PermanentFailure,
    TransientFailure,
)
from storage.models import Platform

CHUNK_BYTES = 4 * 1024 * 1024
MAX_POLL_S = 10.0  # longest wait between STATUS polls, whatever check_after_secs says
PROCESSING_BUDGET_S = 120.0  # then this attempt gives up; a retry polls the same media id
APPEND_TRIES = 3
Classify = Callable[[Publisher, httpx.Response], Failure | None]


def _category(ref: MediaRef) -> str:
    if ref.content_type == "image/gif":
        return "tweet_gif"
    return "tweet_video" if (ref.content_type or "").startswith("video/") else "tweet_image"


def _safe(failure: Failure) -> Failure:
    if failure.kind == FailureKind.OUTCOME_UNKNOWN:
        return TransientFailure(f"media upload: {failure.message}", status=failure.status)
    return failure


async def _call(
    publisher: Any, classify: Classify, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    try:
        response: httpx.Response = await publisher.send(method, url, **kwargs)
    except Failure as sent:
        raise _safe(sent) from sent
    failure = classify(publisher, response)
    if failure is not None:
        raise _safe(failure)
    return response


async def upload_all(
    publisher: Any, request: PublishRequest, checkpoint: Checkpoint, classify: Classify
) -> list[str]:
    """The media ids of the post's media, uploaded and processed (or reused from a checkpoint)."""
    refs = await prepare(
        publisher.client, Platform.X, request.account_id, request.media, measure=True
    )
    state = dict(request.checkpoint)
    uploads: dict[str, dict[str, Any]] = dict(state.get("x_media") or {})
    ids: list[str] = []
    for ref in refs:
        entry = uploads.get(ref.ref) or {}
        if not entry.get("ready"):
            if not entry.get("finalized"):
                media_id, ready = await _upload(publisher, request, ref, classify)
                entry = {"id": media_id, "finalized": True, "ready": ready}
                uploads[ref.ref] = entry
                await checkpoint({**state, "x_media": uploads})
            if not entry.get("ready"):
                await _processed(publisher, request, str(entry["id"]), classify)
                uploads[ref.ref] = {**entry, "ready": True}
                await checkpoint({**state, "x_media": uploads})
        ids.append(str(uploads[ref.ref]["id"]))
    return ids


async def _upload(
    publisher: Any, request: PublishRequest, ref: MediaRef, classify: Classify
) -> tuple[str, bool]:
    """INIT, APPEND every chunk, FINALIZE: the media id, and whether it is ready already."""
    url = f"{publisher.base_url}/2/media/upload"
    headers = bearer(request.access_token)
    init = await _call(
        publisher,
        classify,
        "POST",
        url,
        data={
            "command": "INIT",
            "total_bytes": str(ref.size or 0),
            "media_type": ref.content_type or "",
            "media_category": _category(ref),
        },
        headers=headers,
    )
    media_id = str((init.json().get("data") or {}).get("id") or "")
    if not media_id:
        raise TransientFailure(f"X INIT answered without a media id: {init.text[:200]}")
    index = 0
    async for chunk in chunks(publisher.client, ref, 0, publisher.chunk_bytes):
        for tries in range(1, APPEND_TRIES + 1):
            try:
                await _call(
                    publisher,
                    classify,
                    "POST",
                    url,
                    data={"command": "APPEND", "media_id": media_id, "segment_index": str(index)},
                    files={"media": ("blob", chunk, "application/octet-stream")},
                    headers=headers,
                )
                break
            except TransientFailure:
                if tries == APPEND_TRIES:
                    raise
        index += 1
    final = await _call(
        publisher,
        classify,
        "POST",
        url,
        data={"command": "FINALIZE", "media_id": media_id},
        headers=headers,
    )
    info = (final.json().get("data") or {}).get("processing_info")
    return media_id, not info  # processing_info present: poll STATUS until it succeeds


async def _processed(
    publisher: Any, request: PublishRequest, media_id: str, classify: Classify
) -> None:
    """Poll STATUS until the media is ready; a failed one is permanent (it will not get better)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROCESSING_BUDGET_S
    while True:
        response = await _call(
            publisher,
            classify,
            "GET",
            f"{publisher.base_url}/2/media/upload",
            params={"command": "STATUS", "media_id": media_id},
            headers=bearer(request.access_token),
        )
        info = (response.json().get("data") or {}).get("processing_info") or {}
        state = info.get("state", "succeeded")
        if state == "succeeded":
            return
        if state == "failed":
            error = info.get("error") or {}
            why = error.get("message") or error.get("name") or "no reason given"
            raise PermanentFailure(f"X could not process media {media_id}: {why}")
        wait = min(float(info.get("check_after_secs") or 1), publisher.max_poll_s)
        if loop.time() + wait > deadline:
            raise TransientFailure(f"X is still processing media {media_id}; trying again later")
        await asyncio.sleep(wait)
