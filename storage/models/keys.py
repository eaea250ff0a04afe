"""The stored encryption key check (see storage.queries.key_check): at most one row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, created_at_column


class KeyCheck(Base):
    """A known text encrypted under ENCRYPTION_KEY: a key that cannot read it is the wrong key."""

    __tablename__ = "key_check"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1, server_default="1")
    canary: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    rotated_at: Mapped[datetime | None]
