"""Funnel state keeps the chain times only, and a full run builds it on several sessions.

`rollup_funnel_unit` drops `steps` and `times` (every step event that could still matter, per
unit): building them was most of a full funnel run (at 10M events, 15 of 34 s in one
statement: a join of every step event with its unit's chain, a DISTINCT and a sort per unit).
`reached_at` (t_1 … t_reached) is all a late event needs: chain times before its own time
cannot change, and the chain goes on from the raw events at and after it
(storage/queries/experiments/funnel_units.py). The upgrade keeps every row of a unit that
reached step 1 (`reached` and `reached_at` mean what they meant); units that did not have no
row now. Derived state: the downgrade empties the table and the funnel counts, so the next
run rebuilds both from the event log.

`rollup_funnel_stage` is where a full run's sessions (one per share of the units) put the
rebuilt rows that differ from the state, for the run's own transaction to write. Unlogged,
with no index: rows live for one run (a crash empties it, which loses nothing), read whole.

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
    # Units with step events but no step 1 had a row (reached 0, every time kept); now they
    # have none, and a step-1 event of a unit without a row re-chains it.
    op.execute("DELETE FROM rollup_funnel_unit WHERE reached = 0")
    op.drop_column("rollup_funnel_unit", "steps")
    op.drop_column("rollup_funnel_unit", "times")
    op.create_table(
        "rollup_funnel_stage",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("funnel_name", sa.String(100), nullable=False),
        sa.Column("unit_id", sa.String(200, collation="C"), nullable=False),
        sa.Column("variant_key", sa.String(100, collation="C"), nullable=False),
        # NULL: the row is to be deleted from the state.
        sa.Column("reached", sa.SmallInteger(), nullable=True),
        sa.Column("reached_at", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=True),
        # The state's `reached` before the run; NULL: the state has no row for the unit.
        sa.Column("was", sa.SmallInteger(), nullable=True),
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rollup_funnel_stage")
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
