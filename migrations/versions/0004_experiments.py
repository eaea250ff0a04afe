"""Experiments: definitions, sticky assignments, the event log, rollups and rollup runs.

Revision ID: 0004_experiments
Revises: 0001_spine
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_experiments"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("coverage", sa.Float(), nullable=False, server_default="1"),
        sa.Column("seed", sa.String(200), nullable=True),
        sa.Column("hash_version", sa.SmallInteger(), nullable=False, server_default="2"),
        sa.Column("primary_metric", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiment"),
        sa.UniqueConstraint("key", name="uq_experiment_key"),
        sa.CheckConstraint(
            "status in ('draft', 'running', 'paused', 'stopped')", name="ck_experiment_status"
        ),
        sa.CheckConstraint("coverage >= 0 and coverage <= 1", name="ck_experiment_coverage"),
    )
    op.create_table(
        "experiment_variant",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_variant"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name="fk_experiment_variant_experiment_id_experiment",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("experiment_id", "key", name="uq_experiment_variant_key"),
        sa.UniqueConstraint("experiment_id", "position", name="uq_experiment_variant_position"),
        sa.CheckConstraint("weight >= 0 and weight <= 1", name="ck_experiment_variant_weight"),
    )
    op.create_index("ix_experiment_variant_experiment_id", "experiment_variant", ["experiment_id"])
    op.create_table(
        "experiment_funnel",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("steps", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_experiment_funnel"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name="fk_experiment_funnel_experiment_id_experiment",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("experiment_id", "name", name="uq_experiment_funnel_name"),
    )
    op.create_index("ix_experiment_funnel_experiment_id", "experiment_funnel", ["experiment_id"])
    op.create_table(
        "assignment",
        sa.Column("unit_id", sa.String(200), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("variant_key", sa.String(100), nullable=False),
        sa.Column("bucket", sa.Float(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("unit_id", "experiment_id", name="pk_assignment"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name="fk_assignment_experiment_id_experiment",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_assignment_experiment", "assignment", ["experiment_id", "variant_key"])
    op.create_table(
        "event_log",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("unit_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", postgresql.JSONB(), nullable=False),
        sa.Column("assignments", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_event_log"),
    )
    op.create_index(
        "ix_event_log_occurred_at", "event_log", ["occurred_at"], postgresql_using="brin"
    )
    op.create_index(
        "ix_event_log_received_at", "event_log", ["received_at"], postgresql_using="brin"
    )
    op.create_table(
        "rollup_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_name", sa.String(100), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "event_name", name="pk_rollup_daily"),
    )
    op.create_table(
        "rollup_experiment",
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("variant_key", sa.String(100), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "window_days", "experiment_id", "variant_key", name="pk_rollup_experiment"
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name="fk_rollup_experiment_experiment_id_experiment",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "rollup_funnel",
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), nullable=False),
        sa.Column("funnel_name", sa.String(100), nullable=False),
        sa.Column("variant_key", sa.String(100), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("step_name", sa.String(100), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "window_days",
            "experiment_id",
            "funnel_name",
            "variant_key",
            "step",
            name="pk_rollup_funnel",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name="fk_rollup_funnel_experiment_id_experiment",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "rollup_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(32), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("incremental", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_written", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(64), nullable=True),
        sa.Column("trigger", sa.String(32), nullable=False, server_default="cli"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_runs"),
    )
    op.create_index("ix_rollup_runs_job_started", "rollup_runs", ["job", "started_at"])


def downgrade() -> None:
    op.drop_table("rollup_runs")
    op.drop_table("rollup_funnel")
    op.drop_table("rollup_experiment")
    op.drop_table("rollup_daily")
    op.drop_table("event_log")
    op.drop_table("assignment")
    op.drop_table("experiment_funnel")
    op.drop_table("experiment_variant")
    op.drop_table("experiment")
