"""The dead-letter queue: work that failed for good, kept for a person to requeue or drop."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class DeadLetterStatus(StrEnum):
    PENDING = "pending"  # waiting for a person
    REQUEUED = "requeued"  # sent back to the queue; removed when it succeeds


class DeadLetter(Base):
    __tablename__ = "dead_letter"
    __table_args__ = (CheckConstraint("status in ('pending', 'requeued')", name="status"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # e.g. "fetch"
    # One row per failing thing (e.g. "fetch:mock:123"): a repeat failure counts an attempt.
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    creator_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("creator.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(
        String(16), default=DeadLetterStatus.PENDING, server_default="pending"
    )
    first_failed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_failed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    requeued_at: Mapped[datetime | None]
