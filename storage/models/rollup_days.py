"""Day-grained state behind the experiment rollups (storage/queries/rollup_days.py).

Both are keyed by the rollup window (`window_days`) so a window's state is self-contained; both
are derived, rebuilt by a full run and patched day by day by incremental runs.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
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


class ExperimentFirstsRollup(Base):
    """The cohort units whose first primary-metric day in the window is `first_day`, as one
    sorted array per variant: distinct conversions are not additive over days, but a unit's
    first day only moves earlier when late events arrive, and tens of rows per experiment
    cost a fraction of one row per unit to rewrite."""

    __tablename__ = "rollup_experiment_firsts"

    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    first_day: Mapped[date] = mapped_column(Date, primary_key=True)
    variant_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    units: Mapped[list[str]] = mapped_column(ARRAY(Text))
