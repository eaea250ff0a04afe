"""Funnel state keeps the chain times only: a late event re-chains its unit from the raw events.

`rollup_funnel_unit` drops `steps` and `times` (every step event that could still matter, per
unit): building them was most of a full funnel run (at 10M events, 15 of 34 s in one
statement: a join of every step event with its unit's chain, a DISTINCT and a sort per unit).
`reached_at` (t_1 … t_reached) is all a late event needs: chain times before its own time
cannot change, and the chain goes on from the raw events at and after it
(storage/queries/experiments/funnel_units.py). The upgrade keeps every row (`reached` and
`reached_at` mean what they meant). Derived state: the downgrade empties the table and the
funnel counts, so the next run rebuilds both from the event log.

Revision ID: 0017_slim_funnel_units
Revises: 0016_rollup_funnel_units
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017_slim_funnel_units"
down_revision = "0016_rollup_funnel_units"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("rollup_funnel_unit", "steps")
    op.drop_column("rollup_funnel_unit", "times")


def downgrade() -> None:
    # The older code needs every step time: state without them would patch counts wrongly, so
    # both go and the next run rebuilds them (a funnel without rows is always rebuilt).
    op.execute("DELETE FROM rollup_funnel_unit")
    op.execute("DELETE FROM rollup_funnel")
    # NOT NULL without a default: the table is empty, so no row can violate it (0016's schema).
    op.add_column(
        "rollup_funnel_unit",
        sa.Column("steps", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
    )
    op.add_column(
        "rollup_funnel_unit",
        sa.Column("times", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False),
    )
