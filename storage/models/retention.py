"""How far retention has cut each partitioned table (written by partition maintenance)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class RetentionHorizon(Base):
    """Rows of `table_name` before `dropped_before` are gone for good; rollups of those days
    are kept as they were (never recomputed from the missing rows). Only ever raised."""

    __tablename__ = "retention_horizon"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    dropped_before: Mapped[datetime]
