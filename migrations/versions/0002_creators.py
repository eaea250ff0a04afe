"""Creator tracking: creators, the follower time series, fetch batches, the dead-letter queue.

Revision ID: 0002_creators
Revises: 0001_spine
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_creators"
down_revision = "0001_spine"
branch_labels = None
depends_on = None


def _now() -> sa.sql.elements.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "creator",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("handle", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(300), nullable=True),
        sa.Column("region_code", sa.String(64), nullable=True),
        sa.Column("contact_url", sa.String(500), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("etag", sa.String(200), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_slot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("following", sa.BigInteger(), nullable=True),
        sa.Column("posts", sa.BigInteger(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.CheckConstraint(
            "status in ('active', 'paused', 'gone', 'needs_auth')", name="ck_creator_status"
        ),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["region.code"],
            name="fk_creator_region_code_region",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_creator"),
        sa.UniqueConstraint("platform", "external_id", name="uq_creator_platform_external"),
    )
    op.create_index("ix_creator_region_status", "creator", ["region_code", "status"])
    # Every fetch rewrites the latest stats in place: room on each page keeps those HOT updates.
    op.execute("ALTER TABLE creator SET (fillfactor = 70)")
    op.create_table(
        "follower_sample",
        sa.Column("creator_id", sa.BigInteger(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("following", sa.BigInteger(), nullable=True),
        sa.Column("posts", sa.BigInteger(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creator.id"],
            name="fk_follower_sample_creator_id_creator",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("creator_id", "observed_at", name="pk_follower_sample"),
    )
    op.create_table(
        "fetch_batch",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.ForeignKeyConstraint(
            ["run_id"], ["job_run.id"], name="fk_fetch_batch_run_id_job_run", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "batch_no", name="pk_fetch_batch"),
    )
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(300), nullable=False),
        sa.Column("creator_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column(
            "first_failed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column(
            "last_failed_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()
        ),
        sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status in ('pending', 'requeued')", name="ck_dead_letter_status"),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creator.id"],
            name="fk_dead_letter_creator_id_creator",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letter"),
        sa.UniqueConstraint("dedupe_key", name="uq_dead_letter_dedupe_key"),
    )
    op.create_index("ix_dead_letter_creator_id", "dead_letter", ["creator_id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_creator_id", table_name="dead_letter")
    op.drop_table("dead_letter")
    op.drop_table("fetch_batch")
    op.drop_table("follower_sample")
    op.drop_index("ix_creator_region_status", table_name="creator")
    op.drop_table("creator")
