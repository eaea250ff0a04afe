"""Day-grained state behind the experiment rollups (storage/queries/rollup_days.py).

Both are keyed by the rollup window (`window_days`) so a window's state is self-contained; both
are derived, rebuilt by a full run and patched day by day by incremental runs.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class ExperimentDayRollup(Base):
    """Primary-metric events of the window's cohort, per variant, day of assignment and day of
    the event: additive, so a window's `events` is a sum and a late event rewrites one day."""

    __tablename__ = "rollup_experiment_day"

    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    variant_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    assigned_day: Mapped[date] = mapped_column(Date, primary_key=True)
    event_day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)


class ExperimentUnitRollup(Base):
    """A cohort unit's first primary-metric day in the window: distinct conversions are not
    additive over days, but a first day only moves earlier when late events arrive."""

    __tablename__ = "rollup_experiment_unit"

    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key (a full run inserts a whole cohort; see migration 0007).
    experiment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    variant_key: Mapped[str] = mapped_column(String(100))
    first_day: Mapped[date] = mapped_column(Date)
