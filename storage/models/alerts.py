"""Alert silences: an operator hides one alert condition until a time, with a reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, created_at_column


class AlertSilence(Base):
    """A silence is active while `until` is in the future; ending it early sets `until` to now.
    Rows are kept (with the audit_log entries) as the history of who silenced what."""

    __tablename__ = "alert_silence"
    __table_args__ = (Index("ix_alert_silence_condition_until", "condition", "until"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    condition: Mapped[str] = mapped_column(String(100))  # engine.alerts.conditions name
    until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
