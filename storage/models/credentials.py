"""Tracking credentials kept in the database, encrypted like the platform tokens.

A deployment may keep YOUTUBE_API_KEY, X_BEARER_TOKEN, INSTAGRAM_ACCESS_TOKEN and
INSTAGRAM_USER_ID here instead of (or as a fallback to) the environment; the environment wins.
Values are Fernet ciphertext under ENCRYPTION_KEY and rotate with `connections rotate-key`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base

# The TrackingSettings fields that may be stored (their environment names, lowercased).
TRACKING_CREDENTIALS = (
    "youtube_api_key",
    "x_bearer_token",
    "instagram_access_token",
    "instagram_user_id",
)


class TrackingCredential(Base):
    __tablename__ = "tracking_credential"
    __table_args__ = (
        CheckConstraint(
            "name in (" + ", ".join(f"'{n}'" for n in TRACKING_CREDENTIALS) + ")", name="name"
        ),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_encrypted: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
