"""Publishing: connections, posts, publications and their attempts.

Revision ID: 0003_publishing
Revises: 0001_spine
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_publishing"
down_revision = "0001_spine"
branch_labels = None
depends_on = None

PLATFORMS = "'mock', 'x', 'facebook', 'instagram', 'youtube'"
POST_STATUSES = "'draft', 'scheduled', 'publishing', 'published', 'partial', 'failed', 'cancelled'"
PUBLICATION_STATUSES = (
    "'draft', 'scheduled', 'publishing', 'published', 'failed', 'cancelled', 'unknown'"
)
OUTCOMES = (
    "'running', 'published', 'found', 'transient', 'permanent', 'auth', 'unknown', 'interrupted'"
)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "connection",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="ok"),
        sa.Column("status_reason", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_connection"),
        sa.UniqueConstraint("platform", "account_id", name="uq_connection_account"),
        sa.CheckConstraint(f"platform in ({PLATFORMS})", name="ck_connection_platform"),
        sa.CheckConstraint("status in ('ok', 'needs_reauth')", name="ck_connection_status"),
    )
    op.create_table(
        "post",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("media", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("created_by", sa.String(200), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_post"),
        sa.CheckConstraint(f"status in ({POST_STATUSES})", name="ck_post_status"),
    )
    op.create_index("ix_post_scheduled_at", "post", ["scheduled_at"])
    op.create_table(
        "publication",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("post_id", sa.BigInteger(), nullable=False),
        sa.Column("connection_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("verify_first", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("external_url", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("checkpoint", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_publication"),
        sa.ForeignKeyConstraint(
            ["post_id"], ["post.id"], name="fk_publication_post_id_post", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name="fk_publication_connection_id_connection",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("post_id", "connection_id", name="uq_publication_target"),
        sa.UniqueConstraint("idempotency_key", name="uq_publication_idempotency_key"),
        sa.CheckConstraint(f"status in ({PUBLICATION_STATUSES})", name="ck_publication_status"),
    )
    op.create_index("ix_publication_post", "publication", ["post_id"])
    op.create_index(
        "ix_publication_pending",
        "publication",
        ["due_at"],
        postgresql_where=sa.text("status in ('scheduled', 'publishing')"),
    )
    op.create_table(
        "publication_attempt",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("publication_id", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        _now("started_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False, server_default="running"),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lateness_ms", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_publication_attempt"),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publication.id"],
            name="fk_publication_attempt_publication_id_publication",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(f"outcome in ({OUTCOMES})", name="ck_publication_attempt_outcome"),
    )
    op.create_index(
        "ix_publication_attempt_publication", "publication_attempt", ["publication_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("publication_attempt")
    op.drop_table("publication")
    op.drop_table("post")
    op.drop_table("connection")
