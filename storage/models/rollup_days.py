"""Derived state behind the experiment and funnel rollups.

The day-grained experiment state (storage/queries/rollup_days.py) and the per-unit funnel
progress (storage/queries/experiments/funnel_units.py). All are keyed by the rollup window
(`window_days`) so a window's state is self-contained; all are derived, rebuilt by a full run
and patched by incremental runs (by touched day, or by touched unit for funnels).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
)
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


class FunnelUnitRollup(Base):
    """One unit's progress through one funnel in the window: `reached` steps in order and their
    times. A late event cannot move the chain times before its own, so its unit is re-chained
    from those and the raw events at and after it, alone (storage/queries/experiments/
    funnel_units.py)."""

    __tablename__ = "rollup_funnel_unit"

    window_days: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    funnel_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Bytewise ("C") whatever the database locale: grouped and joined, never shown in order.
    unit_id: Mapped[str] = mapped_column(String(200, collation="C"), primary_key=True)
    variant_key: Mapped[str] = mapped_column(String(100, collation="C"), primary_key=True)
    reached: Mapped[int] = mapped_column(SmallInteger)
    # t_1 … t_reached: a new event of a reached step at or after its time changes nothing.
    reached_at: Mapped[list[datetime]] = mapped_column(ARRAY(DateTime(timezone=True)))


# Rows of `FunnelUnitRollup` rebuilt by a full run's sessions (each a share of the units) that
# differ from the state, for the run's transaction to write; `reached` NULL: a row to delete.
# Unlogged, no key, no index: a run's rows are read whole and deleted with it (a plain table,
# not a mapped class: nothing ever loads one row).
funnel_unit_stage = Table(
    "rollup_funnel_stage",
    Base.metadata,
    Column("run_id", BigInteger, nullable=False),
    Column("experiment_id", BigInteger, nullable=False),
    Column("funnel_name", String(100), nullable=False),
    Column("unit_id", String(200, collation="C"), nullable=False),
    Column("variant_key", String(100, collation="C"), nullable=False),
    Column("reached", SmallInteger),
    Column("reached_at", ARRAY(DateTime(timezone=True))),
    Column("was", SmallInteger),  # the state's `reached` before the run; NULL: no row yet
    prefixes=["UNLOGGED"],
)
