"""Funnel progress per unit, so a late event re-chains only the units it touches.

`rollup_funnel_unit` holds, per (window, experiment, funnel, unit, variant), how many steps the
unit reached in order and the step events that can still change that when late events arrive
(storage/queries/experiments/funnel_units.py). Funnel counts are summed from it; an incremental
run reads the late events and the state of their units, never the window's raw events.
Unit and variant compare bytewise (collation "C", whatever the database's locale): the rollup
groups and joins them, never shows them in order, so locale-aware comparison buys nothing.
Derived state: the upgrade creates an empty table and the next rollup (full, or incremental
finding a funnel without state) builds it from the event log.

Revision ID: 0016_rollup_funnel_units
Revises: 0015_post_experiment_versions
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_rollup_funnel_units"
down_revision = "0015_post_experiment_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_funnel_unit",
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("funnel_name", sa.String(100), nullable=False),
        sa.Column("unit_id", sa.String(200, collation="C"), nullable=False),
        sa.Column("variant_key", sa.String(100, collation="C"), nullable=False),
        sa.Column("reached", sa.SmallInteger(), nullable=False),
        sa.Column("steps", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("times", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.Column("reached_at", postgresql.ARRAY(sa.DateTime(timezone=True)), nullable=False),
        sa.PrimaryKeyConstraint(
            "window_days",
            "experiment_id",
            "funnel_name",
            "unit_id",
            "variant_key",
            name="pk_rollup_funnel_unit",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            ondelete="CASCADE",
            name="fk_rollup_funnel_unit_experiment_id_experiment",
        ),
    )


def downgrade() -> None:
    op.drop_table("rollup_funnel_unit")
