"""Post metrics: one row per publication and schedule step (views, likes, comments, shares).

Revision ID: 0014_post_metrics
Revises: 0013_backfill
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_post_metrics"
down_revision = "0013_backfill"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "post_metric",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("publication_id", sa.BigInteger(), nullable=False),
        sa.Column("step_s", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("likes", sa.BigInteger(), nullable=True),
        sa.Column("comments", sa.BigInteger(), nullable=True),
        sa.Column("shares", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publication.id"],
            name=op.f("fk_post_metric_publication_id_publication"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_metric")),
        sa.UniqueConstraint("publication_id", "step_s", name="uq_post_metric_step"),
    )
    op.create_index("ix_post_metric_publication", "post_metric", ["publication_id", "fetched_at"])


def downgrade() -> None:
    op.drop_index("ix_post_metric_publication", table_name="post_metric")
    op.drop_table("post_metric")
