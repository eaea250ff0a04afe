"""Publishing: connected platform accounts, posts, and one publication per post x account.

A publication's `generation` names its current queue job (`publish:{id}:{generation}`): every
schedule, reschedule, retry, deferral and cancel bumps it, so a job from before the change finds a
different number and drops itself. That makes "Postgres first, queue second" safe in every order.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, created_at_column


class Platform(StrEnum):
    MOCK = "mock"
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"


class ConnectionStatus(StrEnum):
    OK = "ok"
    NEEDS_REAUTH = "needs_reauth"


class PostStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIAL = "partial"  # some accounts got it, some failed for good
    FAILED = "failed"
    CANCELLED = "cancelled"


class PublicationStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waiting in the queue (first try, retry after backoff, or deferred)
    PUBLISHING = "publishing"  # a worker claimed it and may have sent the request
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the request may have gone out; a person decides (no lookup possible)


FINAL_PUBLICATION = (
    PublicationStatus.PUBLISHED,
    PublicationStatus.FAILED,
    PublicationStatus.CANCELLED,
)


class AttemptOutcome(StrEnum):
    RUNNING = "running"
    PUBLISHED = "published"
    FOUND = "found"  # a lookup by idempotency key found the post an earlier attempt made
    TRANSIENT = "transient"  # did not reach the platform, or the platform said "not done, retry"
    PERMANENT = "permanent"
    AUTH = "auth"
    UNKNOWN = "unknown"  # sent, no answer
    INTERRUPTED = "interrupted"  # the worker died during this attempt


def _values(enum: type[StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum)


class Connection(Base):
    """A platform account we publish to. Tokens are Fernet ciphertext (storage.crypto)."""

    __tablename__ = "connection"
    __table_args__ = (
        UniqueConstraint("platform", "account_id", name="uq_connection_account"),
        CheckConstraint(f"platform in ({_values(Platform)})", name="platform"),
        CheckConstraint(f"status in ({_values(ConnectionStatus)})", name="status"),
        Index(
            "ix_connection_refresh_due",
            "expires_at",
            postgresql_where="refresh_token_encrypted IS NOT NULL AND status = 'ok'",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(200))  # the platform's id of the page/account
    display_name: Mapped[str] = mapped_column(String(200))
    token_encrypted: Mapped[str] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(
        String(16), default=ConnectionStatus.OK, server_default=ConnectionStatus.OK.value
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    # OAuth (engine.oauth): scopes as granted (space-separated), and one generation per token
    # write, so a refresher that waited on the row lock sees that another one already wrote.
    scopes: Mapped[str | None] = mapped_column(Text)
    token_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    refreshed_at: Mapped[datetime | None]
    # The team that owns the account (storage.permissions); NULL: admins only.
    team_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("team.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Post(Base):
    __tablename__ = "post"
    __table_args__ = (
        CheckConstraint(f"status in ({_values(PostStatus)})", name="status"),
        Index("ix_post_scheduled_at", "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)
    # References only (URLs or media-library ids), never the bytes.
    media: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    scheduled_at: Mapped[datetime | None]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    status: Mapped[str] = mapped_column(
        String(16), default=PostStatus.DRAFT, server_default=PostStatus.DRAFT.value
    )
    created_by: Mapped[str | None] = mapped_column(String(200))
    # Changes people made (1 on insert, +1 per schedule, cancel, retry or resolve through
    # storage.queries.publishing.lifecycle; not the engine's status updates): an edit made against
    # an older version is refused (storage.queries.publishing.PostChanged).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Publication(Base):
    __tablename__ = "publication"
    __table_args__ = (
        UniqueConstraint("post_id", "connection_id", name="uq_publication_target"),
        UniqueConstraint("idempotency_key", name="uq_publication_idempotency_key"),
        CheckConstraint(f"status in ({_values(PublicationStatus)})", name="status"),
        Index("ix_publication_post", "post_id"),
        Index(
            "ix_publication_pending",
            "due_at",
            postgresql_where="status in ('scheduled', 'publishing')",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(
        String(16), default=PublicationStatus.DRAFT, server_default=PublicationStatus.DRAFT.value
    )
    generation: Mapped[int] = mapped_column(default=0, server_default="0")
    due_at: Mapped[datetime | None]  # when the current job should run (post time, or a retry)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")  # since last (re)schedule
    idempotency_key: Mapped[str] = mapped_column(String(64))
    # Set when an earlier attempt may have reached the platform: look the post up before sending.
    verify_first: Mapped[bool] = mapped_column(default=False, server_default="false")
    outcome_unknown: Mapped[bool] = mapped_column(default=False, server_default="false")
    external_id: Mapped[str | None] = mapped_column(String(200))
    external_url: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Publisher progress that survives a crash (e.g. an Instagram container id).
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class PublicationAttempt(Base):
    """Every try at a publication, for the console's detail view."""

    __tablename__ = "publication_attempt"
    __table_args__ = (
        CheckConstraint(f"outcome in ({_values(AttemptOutcome)})", name="outcome"),
        Index("ix_publication_attempt_publication", "publication_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id", ondelete="CASCADE"))
    generation: Mapped[int]
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(
        String(16), default=AttemptOutcome.RUNNING, server_default=AttemptOutcome.RUNNING.value
    )
    http_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    lateness_ms: Mapped[int | None]  # started_at minus due_at
