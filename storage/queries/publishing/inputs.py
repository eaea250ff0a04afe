"""Validated input for publishing: pydantic models, per-platform body and media limits, times.

No session. The only I/O is `check_body`'s look at media files (a stat and a 16-byte read per
file, see media_rules). Errors are ValueError (pydantic), PublishingError or MediaError with a
message for the person who typed the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator, model_validator

from storage.models import (
    Connection,
    Platform,
)
from storage.queries.publishing.media_rules import check, inspect
from storage.user_error import UserError

BODY_LIMITS = {
    Platform.MOCK: 5000,
    Platform.X: 280,
    Platform.FACEBOOK: 63_206,
    Platform.INSTAGRAM: 2200,
    Platform.YOUTUBE: 5000,
}
# How far in the past a schedule may be typed (clock skew, slow typing) before it is refused.
PAST_TOLERANCE = timedelta(minutes=1)


class PublishingError(ValueError, UserError):
    """A request that cannot be honoured, with a message for the person who made it."""

    title = "post refused"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a directory
        raise ValueError(f"unknown timezone {name!r}: use an IANA name like Europe/Paris") from exc


def parse_local_time(text: str, timezone: str) -> datetime:
    """'2026-11-24 09:30' (or ISO 8601 with an offset) in `timezone` -> an aware UTC instant."""
    tz = zone(timezone)
    raw = text.strip().replace("T", " ")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"cannot read {text!r} as a time: write YYYY-MM-DD HH:MM") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
        # A wall time skipped by a DST change does not round-trip: refuse it rather than guess.
        back = parsed.astimezone(UTC).astimezone(tz)
        if back.replace(tzinfo=None) != parsed.replace(tzinfo=None):
            raise ValueError(f"{text!r} does not exist in {timezone} (clock change)")
    return parsed.astimezone(UTC)


class ConnectionInput(BaseModel):
    platform: Platform
    account_id: str = Field(min_length=1, max_length=200)
    display_name: str = Field(min_length=1, max_length=200)
    token: str = Field(min_length=1, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("expires_at needs a timezone (e.g. 2026-12-01T00:00:00Z)")
        return value


class PostInput(BaseModel):
    body: str = Field(min_length=1)
    media: list[str] = Field(default_factory=list, max_length=10)
    connection_ids: list[int] = Field(min_length=1)
    timezone: str = "UTC"
    scheduled_at: datetime | None = None  # aware; None keeps the post a draft

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the post is empty")
        return value

    @field_validator("media")
    @classmethod
    def _media(cls, value: list[str]) -> list[str]:
        return [ref.strip() for ref in value if ref.strip()]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _when(self) -> PostInput:
        if self.scheduled_at is not None and self.scheduled_at.tzinfo is None:
            raise ValueError("scheduled_at needs a timezone")
        return self


def check_body(body: str, connections: Sequence[Connection], media: Sequence[str] = ()) -> None:
    """Refuse a body too long, or media a chosen platform will not take (MediaError)."""
    for conn in connections:
        limit = BODY_LIMITS.get(Platform(conn.platform), 5000)
        if len(body) > limit:
            raise PublishingError(
                f"the post has {len(body)} characters; {conn.platform} ({conn.display_name}) "
                f"takes at most {limit}"
            )
    check_media(media, connections)


def check_media(media: Sequence[str], connections: Sequence[Connection]) -> None:
    """Each file is read once (size, type); each chosen platform judges the lot."""
    refs = [inspect(ref) for ref in media]
    for conn in connections:
        check(Platform(conn.platform), conn.display_name, refs)
