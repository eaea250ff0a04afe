"""What media a post may carry, per platform: the one table of types, sizes and counts.

A post's `media` holds references, never bytes: an absolute file path the engine can read
(`/srv/media/a.jpg` or `file:///srv/media/a.jpg`) or an `http(s)://` URL. `inspect()` reads a
file's size and first bytes (its type comes from its content, not its name); a URL's type comes
from its name (its size is known only when the engine fetches it). `check()` judges one post's
media against one platform's rules and raises `MediaError` naming the file, the platform and the
limit. It runs when a post is composed (storage.queries.publishing.inputs) and again in the
engine just before sending (engine.publishers.media), where a file that vanished meanwhile is a
permanent failure saying so.

Cost: one stat() and one 16-byte read per file reference; no network. Pure otherwise.

Sources (read 2026-11; the platforms change these, so each limit is one line to edit):
- X: https://docs.x.com/x-api/media/quickstart/media-upload-chunked and
  https://developer.x.com/en/docs/x-api/v1/media/upload-media/uploading-media/media-best-practices
  — images JPEG/PNG/WEBP up to 5 MB, GIF up to 15 MB, video MP4/MOV up to 512 MB; a post takes
  up to 4 images, or 1 GIF or video.
- Instagram: https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
  — images JPEG only, up to 8 MB; Reels MP4/MOV up to 300 MB; Instagram fetches the media from
  a public URL itself (image_url / video_url), so files are refused; one item (no carousels here).
- Facebook Pages: https://developers.facebook.com/docs/graph-api/reference/page/photos/ and
  .../page/videos/ — photos JPEG/PNG/GIF/WEBP up to 10 MB; video up to 1 GB through the
  non-resumable upload we use; one item. A URL of no media type is posted as a link.
- YouTube: https://developers.google.com/youtube/v3/docs/videos/insert — one video (MP4, MOV,
  WEBM, ...), up to 256 GB.
- The mock platform (creatordeck mockstagram): images and video, up to 10 items of 50 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.models import Platform
from storage.user_error import UserError

MB = 1024 * 1024


class MediaError(ValueError, UserError):
    """A media reference a platform will not take; the message names file, platform and limit."""

    title = "media refused"


class Kind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    LINK = "link"  # a URL of no media type (Facebook posts it as a link)


# Content type -> kind. GIF counts as an image here; X's GIF rules are in its table row.
TYPES: dict[str, Kind] = {
    "image/jpeg": Kind.IMAGE,
    "image/png": Kind.IMAGE,
    "image/gif": Kind.IMAGE,
    "image/webp": Kind.IMAGE,
    "video/mp4": Kind.VIDEO,
    "video/quicktime": Kind.VIDEO,
    "video/webm": Kind.VIDEO,
}
SUFFIXES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
}


@dataclass(frozen=True, slots=True)
class Rules:
    """One platform's media rules: content type -> largest size in bytes, and counts."""

    name: str
    max_bytes: dict[str, int]
    max_items: int
    max_videos: int = 1  # a video (or an X GIF) is alone in its post
    needs_media: bool = False
    files: bool = True  # False: the platform fetches media from a URL itself
    links: bool = False  # True: a URL of no media type is posted as a link

    def limit_text(self, content_type: str) -> str:
        size = self.max_bytes.get(content_type)
        return f"{content_type} up to {human(size)}" if size else self.types_text()

    def types_text(self) -> str:
        return ", ".join(sorted(self.max_bytes))


RULES: dict[Platform, Rules] = {
    Platform.X: Rules(
        "X",
        {
            "image/jpeg": 5 * MB,
            "image/png": 5 * MB,
            "image/webp": 5 * MB,
            "image/gif": 15 * MB,
            "video/mp4": 512 * MB,
            "video/quicktime": 512 * MB,
        },
        max_items=4,
    ),
    Platform.INSTAGRAM: Rules(
        "Instagram",
        {"image/jpeg": 8 * MB, "video/mp4": 300 * MB, "video/quicktime": 300 * MB},
        max_items=1,
        needs_media=True,
        files=False,
    ),
    Platform.FACEBOOK: Rules(
        "Facebook",
        {
            "image/jpeg": 10 * MB,
            "image/png": 10 * MB,
            "image/gif": 10 * MB,
            "image/webp": 10 * MB,
            "video/mp4": 1024 * MB,
            "video/quicktime": 1024 * MB,
        },
        max_items=1,
        links=True,
    ),
    Platform.YOUTUBE: Rules(
        "YouTube",
        {t: 256 * 1024 * MB for t, k in TYPES.items() if k is Kind.VIDEO},
        max_items=1,
        needs_media=True,
    ),
    Platform.MOCK: Rules("the mock platform", {t: 50 * MB for t in TYPES}, max_items=10),
}


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One reference as given, and what is known of it without fetching anything."""

    ref: str
    path: Path | None  # a file; None for a URL
    content_type: str | None  # None: a URL whose name says no media type
    size: int | None  # None: a URL (known when fetched)

    @property
    def kind(self) -> Kind:
        return TYPES.get(self.content_type or "", Kind.LINK)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.ref


def human(size: int | None) -> str:
    if size is None:
        return "unknown size"
    if size >= 1024 * MB:
        return f"{size / (1024 * MB):g} GB"
    if size >= MB:
        return f"{size / MB:.1f} MB".replace(".0 MB", " MB")
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def sniff(head: bytes) -> str | None:
    """The content type a file's first 16 bytes show, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def file_path(ref: str) -> Path | None:
    """The file a reference names, or None for an http(s) URL. Raises MediaError otherwise."""
    parts = urlsplit(ref)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise MediaError(f"media {ref!r}: the URL names no host")
        return None
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
    elif parts.scheme == "" or len(parts.scheme) == 1:  # a path (or C:\ on Windows)
        path = Path(ref).expanduser()
    else:
        raise MediaError(f"media {ref!r}: use an absolute file path or an http(s):// URL")
    if not path.is_absolute():
        raise MediaError(
            f"media {ref!r}: give an absolute path (the engine may run in another folder)"
        )
    return path


def inspect(ref: str) -> MediaRef:
    """Size and type of one reference. A file that is missing or unreadable is a MediaError."""
    path = file_path(ref.strip())
    if path is None:
        suffix = Path(urlsplit(ref).path).suffix.lower()
        return MediaRef(ref, None, SUFFIXES.get(suffix), None)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(16)
    except FileNotFoundError as exc:
        raise MediaError(f"media file {path} does not exist") from exc
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise MediaError(f"media file {path} cannot be read: {exc.strerror or exc}") from exc
    content_type = sniff(head)
    if content_type is None:
        raise MediaError(
            f"media file {path} is not an image or video we know "
            "(JPEG, PNG, GIF, WEBP, MP4, MOV, WEBM)"
        )
    return MediaRef(ref, path, content_type, size)


def check(platform: Platform, account: str, refs: Sequence[MediaRef]) -> None:
    """Raise MediaError when `platform` (account `account`) will not take this media."""
    rules = RULES.get(platform)
    if rules is None:
        return
    where = f"{rules.name} ({account})"
    if rules.needs_media and not refs:
        kinds = "a video" if platform is Platform.YOUTUBE else "an image or a video"
        raise MediaError(f"{where} needs {kinds}: add it as media")
    if len(refs) > rules.max_items:
        raise MediaError(f"{len(refs)} media items: {where} takes at most {rules.max_items}")
    heavy = [r for r in refs if r.kind is Kind.VIDEO or r.content_type == "image/gif"]
    if platform is Platform.X and heavy and len(refs) > 1:
        raise MediaError(f"media {heavy[0].name}: {where} takes a GIF or a video alone in a post")
    for ref in refs:
        if ref.path is not None and not rules.files:
            raise MediaError(
                f"media file {ref.path}: {where} fetches media from a public URL itself; "
                "give an https:// URL"
            )
        if ref.content_type is None:
            if rules.links and ref.path is None:
                continue
            raise MediaError(
                f"media {ref.name}: its type is unknown; {where} takes {rules.types_text()}"
            )
        limit = rules.max_bytes.get(ref.content_type)
        if limit is None:
            raise MediaError(
                f"media {ref.name} is {ref.content_type}; {where} takes {rules.types_text()}"
            )
        if ref.size is not None and ref.size > limit:
            raise MediaError(
                f"media {ref.name} is {human(ref.size)}; {where} takes "
                f"{rules.limit_text(ref.content_type)}"
            )
