"""The engine's side of post media: check again just before sending, then read the bytes.

`prepare()` re-inspects every reference with the same rules the compose check used
(storage.queries.publishing.media_rules): a file that vanished or changed since the post was
composed, or a URL the platform will not take, is a PermanentFailure saying which and why (a
retry would meet the same file). A URL's size and type come from a HEAD request (its answer is
checked against the limits too) when the engine sends the bytes itself (X, YouTube); a URL that
cannot be reached is a TransientFailure.

`chunks()` reads one reference from an offset in chunks of a given size: a file by seek and read
(a local read of one chunk blocks the loop for about a millisecond per MB, so it runs in a
thread), a URL by a streamed GET with a Range header (a server that ignores Range is skipped
forward). Nothing is ever held whole in memory except by `read_all()`, used for images only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import httpx

from engine.resilience import PermanentFailure, TransientFailure, classify_exception
from storage.models import Platform
from storage.queries.publishing.media_rules import (
    SUFFIXES,
    MediaError,
    MediaRef,
    check,
    inspect,
)

__all__ = ["MediaRef", "chunks", "prepare", "read_all"]


async def prepare(
    client: httpx.AsyncClient,
    platform: Platform,
    account: str,
    media: Sequence[str],
    measure: bool = False,
) -> list[MediaRef]:
    """Every reference checked against `platform`'s rules now. `measure`: the engine will send
    the bytes itself, so a URL's size is asked (HEAD) and checked too; otherwise the platform
    fetches URLs on its own and judges them itself."""
    refs: list[MediaRef] = []
    for ref in media:
        try:
            found = inspect(ref)
        except MediaError as exc:
            vanished = isinstance(exc.__cause__, FileNotFoundError)
            why = f"{exc}: it vanished after the post was composed" if vanished else str(exc)
            raise PermanentFailure(why) from exc
        if measure and found.path is None and found.kind.value != "link":
            found = await _measure(client, found)
        refs.append(found)
    try:
        check(platform, account, refs)
    except MediaError as exc:
        raise PermanentFailure(str(exc)) from exc
    return refs


async def _measure(client: httpx.AsyncClient, ref: MediaRef) -> MediaRef:
    try:
        response = await client.head(ref.ref, follow_redirects=True)
    except httpx.HTTPError as exc:
        failure = classify_exception(exc)
        raise TransientFailure(f"cannot reach media {ref.ref}: {failure.message}") from exc
    if response.status_code in (405, 501):  # no HEAD here: size known only when read
        return ref
    if response.status_code in (404, 410):
        raise PermanentFailure(f"media {ref.ref} is gone (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise TransientFailure(f"cannot read media {ref.ref} (HTTP {response.status_code})")
    length = response.headers.get("content-length")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in SUFFIXES.values():
        content_type = ref.content_type or content_type
    size = int(length) if length and length.isdigit() else None
    return replace(ref, content_type=content_type or None, size=size)


def _read_file(path: Path, start: int, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(start)
        return handle.read(size)


async def chunks(
    client: httpx.AsyncClient, ref: MediaRef, start: int, chunk_bytes: int
) -> AsyncIterator[bytes]:
    """The bytes of `ref` from `start`, in chunks of `chunk_bytes` (the last may be shorter)."""
    if ref.path is not None:
        offset = start
        while True:
            try:
                data = await asyncio.to_thread(_read_file, ref.path, offset, chunk_bytes)
            except FileNotFoundError as exc:
                raise PermanentFailure(f"media file {ref.path} vanished during the upload") from exc
            if not data:
                return
            yield data
            offset += len(data)
        return
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        async with client.stream("GET", ref.ref, headers=headers) as source:
            if source.status_code >= 400:
                raise PermanentFailure(f"cannot read media {ref.ref} (HTTP {source.status_code})")
            skip = start if source.status_code != 206 else 0
            buffer = b""
            async for piece in source.aiter_bytes():
                if skip:
                    cut = min(skip, len(piece))
                    piece, skip = piece[cut:], skip - cut
                buffer += piece
                while len(buffer) >= chunk_bytes:
                    yield buffer[:chunk_bytes]
                    buffer = buffer[chunk_bytes:]
            if buffer:
                yield buffer
    except httpx.HTTPError as exc:
        # Reading the source publishes nothing: safe to try again.
        raise TransientFailure(f"reading media {ref.ref} failed: {exc!r}") from exc


async def read_all(client: httpx.AsyncClient, ref: MediaRef) -> bytes:
    """The whole of a small reference (an image)."""
    parts = [piece async for piece in chunks(client, ref, 0, 1024 * 1024)]
    return b"".join(parts)
