"""Creators in bulk: the rows of an import file (validated: links only, no PII) and the demo
seed's past samples. No function commits: the caller owns the transaction (storage/database.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import driver
from storage.models import Creator, CreatorStatus, TrackedPlatform

_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")


class CreatorInput(BaseModel):
    """A creator as given in an import file or typed in the console."""

    platform: TrackedPlatform
    external_id: str = Field(min_length=1, max_length=200, pattern=r"^\S+$")
    handle: str = Field(min_length=1, max_length=200)
    display_name: str | None = Field(default=None, max_length=300)
    region_code: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    contact_url: str | None = Field(default=None, max_length=500)
    status: CreatorStatus = CreatorStatus.ACTIVE

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        return value.strip().lstrip("@")

    @field_validator("display_name", "region_code", "contact_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("contact_url")
    @classmethod
    def _link_only(cls, value: str | None) -> str | None:
        """A link to a page, never an email address or a phone number (we store no PII)."""
        if value is None:
            return None
        text = value.strip()
        if _PHONE.match(text):
            raise ValueError("contact_url must be a link (http/https), not a phone number")
        parts = urlsplit(text)
        if parts.scheme.lower() in ("mailto", "tel", "sms") or (
            not parts.scheme and _EMAIL.fullmatch(text)
        ):
            raise ValueError("contact_url must be a link (http/https), not an email or phone")
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("contact_url must be an http(s) link, e.g. https://linktr.ee/name")
        if "@" in parts.netloc:
            raise ValueError("contact_url must not carry credentials or an email address")
        return text


async def upsert_creators(session: AsyncSession, rows: Sequence[CreatorInput]) -> int:
    """Insert new creators, update known ones (same platform + external id)."""
    if not rows:
        return 0
    values = [row.model_dump(mode="json") for row in rows]
    stmt = insert(Creator).values(values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_creator_platform_external",
        set_={
            "handle": stmt.excluded.handle,
            "display_name": stmt.excluded.display_name,
            "region_code": stmt.excluded.region_code,
            "contact_url": stmt.excluded.contact_url,
            "updated_at": func.now(),
        },
    )
    result = await session.execute(stmt.returning(Creator.id))
    return len(result.all())


async def count_external_ids(
    session: AsyncSession, platform: str, external_ids: Sequence[str]
) -> set[str]:
    """Which of these external ids of a platform are already creators."""
    rows = await session.scalars(
        select(Creator.external_id).where(
            Creator.platform == platform, Creator.external_id.in_(list(external_ids))
        )
    )
    return set(rows)


async def ids_by_external(
    session: AsyncSession, platform: str, external_ids: Sequence[str]
) -> dict[str, int]:
    rows = await session.execute(
        select(Creator.external_id, Creator.id).where(
            Creator.platform == platform, Creator.external_id.in_(list(external_ids))
        )
    )
    return {external: creator_id for external, creator_id in rows}


async def insert_history(
    session: AsyncSession,
    rows: Sequence[tuple[int, datetime, int | None, int | None, int | None, int | None]],
) -> None:
    """Bulk-insert past samples (creator, observed_at, followers, following, posts, views);
    existing slots are kept."""
    if not rows:
        return
    conn = await driver(session)
    await conn.execute(
        "INSERT INTO follower_sample (creator_id, observed_at, followers, following, posts, views) "
        "SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], "
        "$5::bigint[], $6::bigint[]) ON CONFLICT DO NOTHING",
        *([list(column) for column in zip(*rows, strict=True)]),
    )
